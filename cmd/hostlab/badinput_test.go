package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/labtest"
	"github.com/hostlab/hostlab/vms"
)

// badInput is one malformed input to the real hostlab binary: it must be
// refused with exit status ≠ 0 and one line on stderr naming the input
// (name) and the fix (fix), leaving no lab folder, domain or run folder.
type badInput struct {
	what string
	// args are hostlab's arguments; LAB stands for the test's lab name,
	// HOME for the test's HOSTLAB_HOME, TMP for a scratch folder.
	args      []string
	name, fix string
	// setup prepares HOME (and TMP) before the command.
	setup func(t *testing.T, home, tmp string)
	// libvirt says the input is only refused after libvirtd answers.
	libvirt bool
}

// badInputs are malformed inputs across the CLI and the files hostlab
// reads; every one fails before a VM starts.
var badInputs = []badInput{
	// Scenarios and their options.
	{what: "unknown scenario", args: []string{"run", "nope", "--lab", "LAB"}, name: `"nope"`, fix: "choose one of"},
	{what: "run without a scenario", args: []string{"run"}, name: "needs one SCENARIO", fix: "hostlab run --help"},
	{what: "run with extra arguments", args: []string{"run", "kill-server", "extra", "--lab", "LAB"}, name: `"extra"`, fix: "give options as flags"},
	{what: "negative grace", args: []string{"run", "kill-server", "--lab", "LAB", "--grace", "-3s"}, name: "--grace -3s", fix: "e.g. --grace 5s"},
	{what: "zero interval", args: []string{"run", "kill-server", "--lab", "LAB", "--interval", "0"}, name: "--interval 0s", fix: "e.g. --interval 1s"},
	{what: "negative max-wait", args: []string{"run", "kill-server", "--lab", "LAB", "--max-wait", "-1s"}, name: "--max-wait -1s", fix: "e.g. --max-wait 2m"},
	{what: "negative user timeout", args: []string{"run", "power-off", "--lab", "LAB", "--user-timeout", "-5s"}, name: "--user-timeout -5s", fix: "e.g. --user-timeout 6s"},
	{what: "malformed duration", args: []string{"run", "kill-server", "--lab", "LAB", "--read-timeout", "soon"}, name: `"soon"`, fix: "hostlab run --help"},
	{what: "keepalive with two fields", args: []string{"run", "power-off", "--lab", "LAB", "--keepalive", "1,2"}, name: `--keepalive "1,2"`, fix: "such as 5s,2s,3"},
	{what: "keepalive below a second", args: []string{"run", "power-off", "--lab", "LAB", "--keepalive", "0,1,3"}, name: `--keepalive "0,1,3"`, fix: "such as 5s,2s,3"},
	{what: "read sideways", args: []string{"run", "kill-server", "--lab", "LAB", "--read", "sideways"}, name: `--read "sideways"`, fix: "use blocking or event"},
	{what: "unknown server SIGTERM behaviour", args: []string{"run", "shutdown", "--lab", "LAB", "--server-sigterm", "maybe"}, name: `"maybe"`, fix: "use close, ignore or default"},
	{what: "unknown reboot", args: []string{"run", "crash-reboot", "--lab", "LAB", "--reboot", "sideways"}, name: `--reboot "sideways"`, fix: "use reset or power-cycle"},
	{what: "option of another scenario", args: []string{"run", "power-off", "--lab", "LAB", "--reboot", "reset"}, name: "--reboot", fix: "it is for crash-reboot"},
	{what: "unknown connect target", args: []string{"run", "connect-dead", "--lab", "LAB", "--target", "bogus"}, name: `--target "bogus"`, fix: "use off or no-listener"},
	{what: "unknown neighbour state", args: []string{"run", "connect-dead", "--lab", "LAB", "--neigh", "hot"}, name: `--neigh "hot"`, fix: "use warm or cold"},
	{what: "connect target for power-off", args: []string{"run", "power-off", "--lab", "LAB", "--target", "off"}, name: "--target", fix: "it is for connect-dead"},
	{what: "idle flooding client", args: []string{"run", "hang-server", "--lab", "LAB", "--idle"}, name: "--idle", fix: "must fill the server's window"},
	{what: "classic flooding client", args: []string{"run", "hang-server", "--lab", "LAB", "--client", "classic"}, name: "--client classic", fix: "give go (the default) or your own"},
	{what: "sysctl key with a slash", args: []string{"run", "kill-server", "--lab", "LAB", "--sysctl", "client:net/ipv4/tcp_retries2=5"}, name: "client:net/ipv4/tcp_retries2=5", fix: "e.g. net.ipv4.tcp_retries2"},
	{what: "sysctl without a value", args: []string{"run", "kill-server", "--lab", "LAB", "--sysctl", "client:net.ipv4.tcp_retries2="}, name: "client:net.ipv4.tcp_retries2=", fix: "give one"},
	{what: "sysctl of an unknown guest", args: []string{"run", "kill-server", "--lab", "LAB", "--sysctl", "nobody:net.ipv4.tcp_retries2=5"}, name: "nobody:", fix: "client, server or router"},
	{what: "missing client program", args: []string{"run", "kill-server", "--lab", "LAB", "--client", "/nonexistent"}, name: `"/nonexistent"`, fix: "not go, classic or an existing file"},
	{what: "dynamic client program", args: []string{"run", "kill-server", "--lab", "LAB", "--client", "/bin/ls"}, name: `"/bin/ls"`, fix: "give a static x86-64 binary"},
	{what: "client program that is a folder", args: []string{"run", "kill-server", "--lab", "LAB", "--client", "TMP"}, name: "not a regular file", fix: "give a static x86-64 binary"},
	{what: "empty client", args: []string{"run", "kill-server", "--lab", "LAB", "--client="}, name: `--client ""`, fix: "give go, classic"},
	{what: "out is a file", args: []string{"run", "kill-server", "--lab", "LAB", "--out", "TMP/file"}, name: "--out", fix: "give a folder",
		setup: func(t *testing.T, _, tmp string) { writeTestFile(t, filepath.Join(tmp, "file"), "x") }},
	{what: "out cannot be created", args: []string{"run", "kill-server", "--lab", "LAB", "--out", "/proc/hostlab-test/runs"}, name: "--out /proc/hostlab-test/runs", fix: "give a writable folder"},
	{what: "unknown flag", args: []string{"run", "kill-server", "--lab", "LAB", "--bogus"}, name: "--bogus", fix: "hostlab run --help"},
	{what: "invalid lab name", args: []string{"run", "kill-server", "--lab", "Bad_Name"}, name: `"Bad_Name"`, fix: "use 1-31 lowercase letters"},
	{what: "corrupt lab state", args: []string{"run", "kill-server", "--lab", "LAB"}, name: "is corrupt", fix: "hostlab down --lab",
		setup: func(t *testing.T, home, _ string) {
			writeTestFile(t, filepath.Join(home, "labs", testLab(), "lab.json"), "{not json")
		}},

	// Bringing a lab up.
	{what: "memory beyond the host", args: []string{"up", "--lab", "LAB", "--memory", "999999"}, name: "--memory 999999", fix: "give at most --memory"},
	{what: "zero memory", args: []string{"up", "--lab", "LAB", "--memory", "0"}, name: "--memory 0", fix: "e.g. --memory 128"},
	{what: "negative memory", args: []string{"up", "--lab", "LAB", "--memory", "-5"}, name: "--memory -5", fix: "e.g. --memory 128"},
	{what: "memory not a number", args: []string{"up", "--lab", "LAB", "--memory", "lots"}, name: `"lots"`, fix: "hostlab up --help"},
	{what: "missing kernel file", args: []string{"up", "--lab", "LAB", "--kernel", "/nope", "--modules", "/nope"}, name: "--kernel /nope", fix: "give an existing path"},
	{what: "kernel without modules", args: []string{"up", "--lab", "LAB", "--kernel", "TMP/vmlinux"}, name: "kernel image given without its modules", fix: "set --modules",
		setup: func(t *testing.T, _, tmp string) { writeTestFile(t, filepath.Join(tmp, "vmlinux"), "not a kernel") }, libvirt: true},
	{what: "unknown kernel package", args: []string{"up", "--lab", "LAB", "--kernel-package", "linux-image-nope"}, name: `"linux-image-nope"`, fix: "fix --kernel-package", libvirt: true},
	{what: "unknown accelerator", args: []string{"up", "--lab", "LAB", "--accel", "warp"}, name: `--accel "warp"`, fix: "use auto, kvm or tcg"},
	{what: "negative grace at up", args: []string{"up", "--lab", "LAB", "--grace", "-3s"}, name: "--grace -3s", fix: "e.g. --grace 5s"},
	{what: "boot sysctl without a value", args: []string{"up", "--lab", "LAB", "--sysctl", "client:net.ipv4.tcp_retries2"}, name: "client:net.ipv4.tcp_retries2", fix: "want ROLE:KEY=VALUE"},
	{what: "boot sysctl smuggling kernel parameters", args: []string{"up", "--lab", "LAB", "--sysctl", "client:net.ipv4.tcp_retries2=5 init=/bin/sh"}, name: "white space", fix: "hostlab run --sysctl"},
	{what: "router sysctl without a router", args: []string{"up", "--lab", "LAB", "--sysctl", "router:net.ipv4.ip_forward=1"}, name: "router", fix: "--routed"},
	{what: "up with an argument", args: []string{"up", "extra"}, name: `"extra"`, fix: "give options as flags"},
	{what: "home is a file", args: []string{"--home", "TMP/file", "up", "--lab", "LAB"}, name: "--home", fix: "give a folder",
		setup: func(t *testing.T, _, tmp string) { writeTestFile(t, filepath.Join(tmp, "file"), "x") }},
	{what: "home cannot be created", args: []string{"--home", "/proc/hostlab-test", "up", "--lab", "LAB"}, name: "--home /proc/hostlab-test", fix: "give a folder hostlab can write in"},
	{what: "damaged image cache", args: []string{"up", "--lab", "LAB"}, name: "cache/images is not a folder", fix: "remove it",
		setup: func(t *testing.T, home, _ string) { writeTestFile(t, filepath.Join(home, "cache", "images"), "junk") }},
	{what: "full disk", args: []string{"--home", "TMP/full", "up", "--lab", "LAB"}, name: "not enough free disk space", fix: "free some space",
		setup: mountFullDisk},

	// Global flags, guests and the other verbs.
	{what: "libvirt URI of another driver", args: []string{"--connect", "bogus://x", "status"}, name: `"bogus://x"`, fix: "give qemu:///system"},
	{what: "libvirt URI that is no URI", args: []string{"--connect", ":nope", "status"}, name: `":nope"`, fix: "fix --connect"},
	{what: "unreachable libvirt", args: []string{"--connect", "qemu+tcp://127.0.0.1:1/system", "status"}, name: "qemu+tcp://127.0.0.1:1/system", fix: "check --connect"},
	{what: "exec without --", args: []string{"exec", "client", "--lab", "LAB", "ls"}, name: "ls", fix: "put the command after --"},
	{what: "exec without a command", args: []string{"exec", "client", "--lab", "LAB", "--"}, name: "no command after --", fix: "e.g. hostlab exec client -- uname -r"},
	{what: "exec in an unknown guest", args: []string{"exec", "bogus", "--lab", "LAB", "--", "ls"}, name: `"bogus"`, fix: "use client or server"},
	{what: "exec in an unknown lab", args: []string{"exec", "client", "--lab", "LAB", "--", "ls"}, name: "no such lab", fix: "hostlab up --lab"},
	{what: "ssh with two guests", args: []string{"ssh", "client", "server"}, name: `"server"`, fix: "give options as flags"},
	{what: "status with an argument", args: []string{"status", "extra"}, name: `"extra"`, fix: "give options as flags"},
	{what: "unknown verb", args: []string{"rn", "kill-server"}, name: `"rn"`, fix: "did you mean"},
	{what: "unknown bench", args: []string{"bench", "verdict"}, name: `"verdict"`, fix: "did you mean verdicts"},
	{what: "soak of no runs", args: []string{"bench", "soak", "--runs", "0"}, name: "--runs 0", fix: "at least 1"},
	{what: "soak lab prefix", args: []string{"bench", "soak", "--lab-prefix", "Bad_"}, name: `"Bad_"`, fix: "use 1-31 lowercase letters"},
	{what: "verdicts of no reps", args: []string{"bench", "verdicts", "--reps", "0"}, name: "--reps 0", fix: "at least 1"},
	{what: "verdicts of an unknown scenario", args: []string{"bench", "verdicts", "--scenarios", "nope"}, name: `"nope"`, fix: "choose one of"},
	{what: "verdict without a run folder", args: []string{"verdict"}, name: "RUN_DIR", fix: "hostlab verdict --help"},
	{what: "verdict of a missing run folder", args: []string{"verdict", "/nope"}, name: "/nope", fix: "give a run folder"},
	{what: "deploy to nowhere", args: []string{"deploy", "--lab", "LAB", "--to", "nowhere"}, name: `"nowhere"`, fix: "client, server or both"},
	{what: "down of one lab and all", args: []string{"down", "--lab", "LAB", "--all"}, name: "--all", fix: "not both"},
}

// testLab is the name of the labs the bad inputs name: never brought up.
func testLab() string { return os.Getenv("HOSTLAB_TEST_LAB_PREFIX") + "t-bad" }

// TestBadInput runs the real binary on every bad input with HOSTLAB_HOME in
// a scratch folder: each must be refused fast, in one line naming the input
// and the fix, leaving nothing behind.
func TestBadInput(t *testing.T) {
	if len(badInputs) < 30 {
		t.Fatalf("only %d bad inputs", len(badInputs))
	}
	bin := labtest.GuestBinary(t) // hostlab, built once with CGO_ENABLED=0
	libvirtUp := libvirtReachable()
	for _, c := range badInputs {
		t.Run(c.what, func(t *testing.T) {
			if c.libvirt && !libvirtUp {
				if labtest.InCI() {
					t.Fatal("libvirtd is not reachable")
				}
				t.Skip("libvirtd is not reachable")
			}
			home, tmp := t.TempDir(), t.TempDir()
			if c.setup != nil {
				c.setup(t, home, tmp)
			}
			args := make([]string, len(c.args))
			for i, a := range c.args {
				a = strings.ReplaceAll(a, "LAB", testLab())
				a = strings.ReplaceAll(a, "HOME", home)
				args[i] = strings.ReplaceAll(a, "TMP", tmp)
			}
			homes := []string{home, filepath.Join(tmp, "full")}
			before := snapshot(homes)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = append(cleanEnv(), "HOSTLAB_HOME="+home)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			t0 := time.Now()
			err := cmd.Run()
			took := time.Since(t0)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("hostlab %s: %v, want a non-zero exit\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
			}
			msg := strings.TrimSuffix(stderr.String(), "\n")
			switch {
			case strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "hostlab: "):
				t.Errorf("stderr is not one line starting with \"hostlab: \":\n%s", stderr.String())
			case !strings.Contains(msg, c.name):
				t.Errorf("error does not name the input (%q): %s", c.name, msg)
			case !strings.Contains(msg, c.fix):
				t.Errorf("error does not give the fix (%q): %s", c.fix, msg)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout not empty: %s", stdout.String())
			}
			if took > 30*time.Second {
				t.Errorf("refused only after %s", took.Round(time.Second))
			}
			if after := snapshot(homes); !slices.Equal(after, before) {
				t.Errorf("left state behind: before %q, after %q", before, after)
			}
			if libvirtUp {
				checkNoDomains(t)
			}
			t.Logf("%s (%s)", msg, took.Round(time.Millisecond))
		})
	}
}

// TestBadBootSysctlsOnVMs gives up sysctls that only the guest kernel can
// refuse (a value it rejects, a key it lacks): up must boot, read them back,
// refuse in one line naming the --sysctl and the fix, and roll the lab back.
func TestBadBootSysctlsOnVMs(t *testing.T) {
	labtest.Require(t)
	bin := labtest.GuestBinary(t)
	// A scratch home QEMU can traverse, sharing the real cache (kernel and
	// images) so nothing is downloaded again.
	home, err := os.MkdirTemp("", "hostlab-badinput-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(lab.HomeDir(), "cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cache, filepath.Join(home, "cache")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ sysctl, name, fix string }{
		{"client:net.ipv4.tcp_retries2=abc", "client:net.ipv4.tcp_retries2=abc", "give a value it accepts"},
		{"server:net.ipv4.no_such_sysctl=1", "server:net.ipv4.no_such_sysctl=1", "fix KEY"},
	} {
		t.Run(c.sysctl, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "up", "--lab", testLab(), "--sysctl", c.sysctl)
			cmd.Env = append(cleanEnv(), "HOSTLAB_HOME="+home)
			out, err := cmd.CombinedOutput()
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("up --sysctl %s: %v, want a non-zero exit:\n%s", c.sysctl, err, out)
			}
			if !strings.HasPrefix(last, "hostlab: ") || !strings.Contains(last, c.name) || !strings.Contains(last, c.fix) {
				t.Fatalf("last line does not name %q and %q:\n%s", c.name, c.fix, out)
			}
			if entries, _ := os.ReadDir(filepath.Join(home, "labs")); len(entries) != 0 {
				t.Errorf("lab folder left behind: %v", entries)
			}
			checkNoDomains(t)
			for _, role := range lab.Roles {
				if pid := qemuOf(vms.DomainName(testLab(), role)); pid != "" {
					t.Errorf("QEMU of %s still runs as pid %s", role, pid)
				}
			}
			t.Log(last)
		})
	}
}

// cleanEnv is the test's environment without what would point the binary
// at real labs or another hypervisor.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOSTLAB_HOME=") && !strings.HasPrefix(kv, "LIBVIRT_DEFAULT_URI=") {
			env = append(env, kv)
		}
	}
	return env
}

// snapshot lists every path under the homes, so that a command can be
// shown to have left nothing behind.
func snapshot(homes []string) []string {
	var paths []string
	for _, h := range homes {
		_ = filepath.Walk(h, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				paths = append(paths, p)
			}
			return nil
		})
	}
	return paths
}

// libvirtReachable reports whether qemu:///system answers.
func libvirtReachable() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hv, err := vms.Connect(ctx, vms.DefaultURI)
	if err != nil {
		return false
	}
	hv.Close()
	return true
}

// checkNoDomains fails t if libvirt knows a domain of the test's lab.
func checkNoDomains(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hv, err := vms.Connect(ctx, vms.DefaultURI)
	if err != nil {
		t.Errorf("libvirt: %v", err)
		return
	}
	defer hv.Close()
	doms, err := hv.List(ctx)
	if err != nil {
		t.Errorf("libvirt: %v", err)
		return
	}
	for _, d := range doms {
		if d.Lab == testLab() || strings.HasPrefix(d.Name, vms.DomainPrefix+testLab()+"-") {
			t.Errorf("domain %s left behind (%s)", d.Name, d.State)
		}
	}
}

// qemuOf finds a running QEMU whose command line names domain.
func qemuOf(domain string) string {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte("qemu")) && bytes.Contains(b, []byte("guest="+domain+",")) {
			return e.Name()
		}
	}
	return ""
}

// writeTestFile writes data to path, creating its folder.
func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mountFullDisk mounts a 1 MiB tmpfs at TMP/full: a home on a full disk.
// It needs root; elsewhere the row is skipped.
func mountFullDisk(t *testing.T, _, tmp string) {
	t.Helper()
	dir := filepath.Join(tmp, "full")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v): the disk check is unit-tested in lab", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
}
