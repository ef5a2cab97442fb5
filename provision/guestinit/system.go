package guestinit

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostlab/hostlab/provision/guestsysctl"
)

// Paths in the guest image.
const (
	moduleDir          = "/lib/modules/hostlab"
	hostKeyPath        = "/etc/hostlab/ssh_host_ed25519_key"
	authorizedKeysPath = "/etc/hostlab/authorized_keys"
)

type mountSpec struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

var mounts = []mountSpec{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
}

// mountAll mounts the pseudo file systems and fixes up /dev; it returns one
// joined error for everything that failed.
func mountAll() error {
	var errs []error
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("create mount point: %w", err))
			continue
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err))
		}
	}
	// With a private devpts instance, /dev/ptmx must lead to pts/ptmx.
	if f, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0); err == nil {
		f.Close()
	} else {
		_ = os.Remove("/dev/ptmx")
		if err := os.Symlink("pts/ptmx", "/dev/ptmx"); err != nil {
			errs = append(errs, fmt.Errorf("link /dev/ptmx: %w", err))
		}
	}
	for link, target := range map[string]string{
		"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	} {
		if _, err := os.Lstat(link); err != nil {
			_ = os.Symlink(target, link)
		}
	}
	return errors.Join(errs...)
}

// loadModules loads the modules listed in load-order, in order, logging each.
func loadModules(log *Logger) {
	data, err := os.ReadFile(filepath.Join(moduleDir, "load-order"))
	if err != nil {
		log.Logf("modules: %v (loading none)", err)
		return
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		start := time.Now()
		if err := loadModule(filepath.Join(moduleDir, name)); err != nil {
			log.Logf("module %s: FAILED: %v", name, err)
			continue
		}
		log.Logf("module %s loaded (%s)", name, time.Since(start).Round(time.Microsecond))
	}
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open module: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("finit_module %s: %w", path, err)
	}
	return nil
}

// applySysctls writes each sysctl, logging successes and, loudly, failures.
func applySysctls(log *Logger, sysctls []Sysctl) {
	for _, s := range sysctls {
		if err := os.WriteFile(s.Path(), []byte(s.Value), 0o644); err != nil {
			log.Logf("sysctl %s=%s: FAILED: %v", s.Key, s.Value, err)
			continue
		}
		got, _ := os.ReadFile(s.Path())
		log.Logf("sysctl %s = %s", s.Key, strings.TrimSpace(string(got)))
	}
}

// saveSysctlBaseline snapshots the guest's sysctl baseline (every readable
// and writable value under /proc/sys/net, plus the boot-time keys) for
// hostlab-sysctl. It runs right after the boot-time sysctls are applied, in
// the background: under TCG it takes a second or two, and nothing but
// hostlab-sysctl, which waits for the snapshot, changes sysctls meanwhile.
func saveSysctlBaseline(log *Logger, boot []Sysctl) {
	defer recoverLog(log, "sysctl baseline")
	keys := make([]string, 0, len(boot))
	for _, s := range boot {
		keys = append(keys, s.Key)
	}
	start := time.Now()
	n, err := guestsysctl.Guest().SaveBaseline(keys)
	if err != nil {
		logLines(log, "sysctl baseline: FAILED: ", err)
	}
	log.Logf("sysctl baseline: %d values in %s (%s)", n, guestsysctl.BaselinePath, time.Since(start).Round(time.Millisecond))
}

// setupEnv sets the environment every child inherits.
func setupEnv() {
	for k, v := range map[string]string{"PATH": "/bin:/sbin", "HOME": "/root", "TERM": "linux"} {
		_ = os.Setenv(k, v)
	}
	_ = os.Chdir("/")
}
