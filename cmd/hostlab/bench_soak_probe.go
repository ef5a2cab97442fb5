package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hostlab/hostlab/vms"
)

// soakProbe is what the soak bench measures between runs: what a leak
// would make grow.
type soakProbe struct {
	// At says when: "start" (before the lab is up), "lab up", "before" or
	// "after" a run, "end" (after the lab is down).
	At string `json:"at"`
	// Run is the run the probe is before or after (0 for the others).
	Run int `json:"run,omitempty"`
	// Domains counts the libvirt domains of the soak's lab, in any state.
	Domains int `json:"domains"`
	// HostlabDomains counts every hostlab domain on the hypervisor, other
	// labs' too.
	HostlabDomains int `json:"hostlab_domains"`
	// QEMU counts the QEMU processes of the soak's lab.
	QEMU int `json:"qemu"`
	// QEMUAll counts every QEMU process on the host, other labs' too.
	QEMUAll int `json:"qemu_all"`
	// FDs counts the open file descriptors of this hostlab process, and
	// FDKinds by what they are ("socket", "pipe", "anon_inode:[eventpoll]",
	// or the file's path).
	FDs     int            `json:"fds"`
	FDKinds map[string]int `json:"fd_kinds,omitempty"`
	// Goroutines counts this process's goroutines.
	Goroutines int `json:"goroutines"`
	// Listening counts the TCP sockets in LISTEN held by this process and
	// the lab's QEMU processes (the management port forwards).
	Listening int `json:"listening"`
	// ListeningAll counts every TCP socket in LISTEN on the host.
	ListeningAll int `json:"listening_all"`
	// UDP counts the UDP sockets of this process and the lab's QEMU
	// processes (the lab links).
	UDP int `json:"udp"`
	// LabBytes is the size of the lab's folder (consoles, pcaps, initrds).
	LabBytes int64 `json:"lab_bytes"`
	// CacheBytes is the size of HOME/cache.
	CacheBytes int64 `json:"cache_bytes"`
	// HomeBytes is the size of HOME without the soak's run folders.
	HomeBytes int64 `json:"home_bytes"`
	// OutBytes is the size of the soak's run folders.
	OutBytes int64 `json:"out_bytes"`
	// Errors lists what could not be measured.
	Errors []string `json:"errors,omitempty"`
}

// probe measures what a leak would make grow.
func (b *soakBench) probe(ctx context.Context, at string, run int) soakProbe {
	p := soakProbe{At: at, Run: run, Goroutines: runtime.NumGoroutine()}
	fail := func(what string, err error) { p.Errors = append(p.Errors, what+": "+err.Error()) }
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if hv, err := vms.Connect(pctx, vms.ResolveURI(b.base.URI)); err != nil {
		fail("domains", err)
	} else {
		doms, err := hv.List(pctx)
		hv.Close()
		if err != nil {
			fail("domains", err)
		}
		for _, d := range doms {
			p.HostlabDomains++
			if d.Lab == b.name || strings.HasPrefix(d.Name, vms.DomainPrefix+b.name+"-") {
				p.Domains++
			}
		}
	}
	self, err := fdTargets("self")
	if err != nil {
		fail("fds", err)
	}
	p.FDs = len(self)
	p.FDKinds = fdKinds(self)
	qemu, all := qemuPIDs(vms.DomainPrefix + b.name + "-")
	p.QEMU, p.QEMUAll = len(qemu), all
	inodes := socketInodes(self)
	for _, pid := range qemu {
		t, err := fdTargets(pid)
		if err != nil {
			fail("qemu "+pid+" fds", err)
			continue
		}
		for k := range socketInodes(t) {
			inodes[k] = true
		}
	}
	var nerr error
	p.Listening, p.ListeningAll, p.UDP, nerr = countSockets(inodes)
	if nerr != nil {
		fail("sockets", nerr)
	}
	p.LabBytes = treeBytes(filepath.Join(b.home, "labs", b.name), "")
	p.CacheBytes = treeBytes(filepath.Join(b.home, "cache"), "")
	p.HomeBytes = treeBytes(b.home, b.out)
	p.OutBytes = treeBytes(b.out, "")
	return p
}

// fdTargets reads the targets of a process's open file descriptors (pid
// "self" for this one); the descriptor reading the folder is left out.
func fdTargets(pid string) ([]string, error) {
	dir := filepath.Join("/proc", pid, "fd")
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	own := strconv.Itoa(int(f.Fd()))
	var out []string
	for _, n := range names {
		if pid == "self" && n == own {
			continue
		}
		t, err := os.Readlink(filepath.Join(dir, n))
		if err != nil {
			continue // closed meanwhile
		}
		out = append(out, t)
	}
	return out, nil
}

// fdKinds counts fd targets by kind: sockets and pipes without their
// inode, other targets as they are.
func fdKinds(targets []string) map[string]int {
	m := map[string]int{}
	for _, t := range targets {
		if kind, _, ok := strings.Cut(t, ":["); ok && (kind == "socket" || kind == "pipe") {
			t = kind
		}
		m[t]++
	}
	return m
}

// socketInodes picks the socket inodes out of fd targets ("socket:[N]").
func socketInodes(targets []string) map[string]bool {
	m := map[string]bool{}
	for _, t := range targets {
		if s, ok := strings.CutPrefix(t, "socket:["); ok {
			m[strings.TrimSuffix(s, "]")] = true
		}
	}
	return m
}

// qemuPIDs lists the QEMU processes whose command line names a domain
// starting with prefix, and counts every QEMU process.
func qemuPIDs(prefix string) (pids []string, all int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), "qemu-system") {
			continue
		}
		all++
		if strings.Contains(string(b), "guest="+prefix) {
			pids = append(pids, e.Name())
		}
	}
	return pids, all
}

// countSockets counts, from /proc/net, the listening TCP sockets and the
// UDP sockets among inodes, and every listening TCP socket on the host.
func countSockets(inodes map[string]bool) (listening, listeningAll, udp int, err error) {
	for _, name := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, rerr := os.ReadFile(filepath.Join("/proc/net", name))
		if rerr != nil {
			err = rerr
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			mine := inodes[f[9]]
			switch {
			case strings.HasPrefix(name, "tcp") && f[3] == "0A": // TCP_LISTEN
				listeningAll++
				if mine {
					listening++
				}
			case strings.HasPrefix(name, "udp") && mine:
				udp++
			}
		}
	}
	return listening, listeningAll, udp, err
}

// treeBytes sums the sizes of the regular files under root, skipping the
// folder skip.
func treeBytes(root, skip string) int64 {
	var n int64
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: not counted
		}
		if d.IsDir() && skip != "" && p == skip {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
