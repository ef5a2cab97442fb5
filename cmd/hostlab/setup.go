package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/vms"
)

// hostPackages are the Debian packages hostlab needs on the host.
var hostPackages = []string{
	"qemu-system-x86", "libvirt-daemon-system", "libvirt-clients", "libvirt-daemon-driver-qemu",
	"busybox-static", "kmod", "cpio", "xz-utils", "gcc", "libc6-dev",
}

// check is one prerequisite: what it is, whether it holds, and the fix.
type check struct {
	name     string
	test     func(ctx context.Context) error
	fix      string
	optional bool
}

func checks(g *globals) []check {
	return []check{
		{"running as root", func(context.Context) error {
			if os.Geteuid() != 0 {
				return errors.New("not root")
			}
			return nil
		}, "run hostlab as root (it drives qemu:///system and writes " + lab.DefaultHome + ")", false},
		{"host packages", func(context.Context) error {
			if missing := missingPackages(); len(missing) > 0 {
				return fmt.Errorf("missing %s", strings.Join(missing, " "))
			}
			return nil
		}, "run `hostlab setup` (or apt-get install --no-install-recommends " + strings.Join(hostPackages, " ") + ")", false},
		{"libvirtd reachable", func(ctx context.Context) error {
			hv, err := vms.Connect(ctx, vms.ResolveURI(g.connect))
			if err != nil {
				return err
			}
			return hv.Close()
		}, "run `hostlab setup` to start virtlogd and libvirtd", false},
		{"hostlab binary usable as guest init", func(context.Context) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			return provision.CheckGuestBinary(exe)
		}, "build hostlab statically: CGO_ENABLED=0 go build -o hostlab ./cmd/hostlab", false},
		{"free disk for the cache (1 GiB)", func(context.Context) error {
			return lab.CheckFreeSpace(homeOf(g), 1<<30)
		}, "free disk space under " + homeOf(g) + " or point --home elsewhere", false},
		{"/dev/kvm (optional: without it guests run under TCG)", func(context.Context) error {
			_, err := os.Stat("/dev/kvm")
			return err
		}, "optional: load kvm_intel/kvm_amd; hostlab falls back to TCG", true},
	}
}

func homeOf(g *globals) string {
	if g.home != "" {
		return g.home
	}
	return lab.HomeDir()
}

func missingPackages() []string {
	var missing []string
	for _, p := range hostPackages {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
		if err != nil || !strings.Contains(string(out), "install ok installed") {
			missing = append(missing, p)
		}
	}
	return missing
}

func newDoctorCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check each prerequisite and print the fix for what is missing",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			failed := 0
			for _, c := range checks(g) {
				ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
				err := c.test(ctx)
				cancel()
				switch {
				case err == nil:
					fmt.Printf("ok    %s\n", c.name)
				case c.optional:
					fmt.Printf("note  %s: %v — %s\n", c.name, err, c.fix)
				default:
					failed++
					fmt.Printf("FAIL  %s: %v — fix: %s\n", c.name, err, c.fix)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d check(s) failed; fix them and run `hostlab doctor` again", failed)
			}
			return nil
		},
	}
}

func newSetupCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "setup",
		Short: "Install missing host packages and start libvirtd when no service manager does (idempotent)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if _, err := os.Stat("/etc/debian_version"); err != nil {
				return fmt.Errorf("automatic setup supports Debian and Ubuntu only: install QEMU (x86_64), libvirt with its QEMU driver, a static busybox, kmod, cpio, xz and gcc, start libvirtd, then run `hostlab doctor`")
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("setup installs packages: run it as root")
			}
			if missing := missingPackages(); len(missing) > 0 {
				fmt.Printf("installing %s\n", strings.Join(missing, " "))
				if err := runLogged(ctx, "apt-get", "update", "-q"); err != nil {
					return err
				}
				args := append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)
				if err := runLogged(ctx, "apt-get", args...); err != nil {
					return err
				}
			} else {
				fmt.Println("host packages: all installed")
			}
			fixKVMPermissions()
			if err := startDaemons(ctx, g); err != nil {
				return err
			}
			fmt.Println("setup done; `hostlab doctor` checks the rest")
			return nil
		},
	}
}

// runLogged runs a command with its output on stderr.
func runLogged(ctx context.Context, name string, args ...string) error {
	c := exec.CommandContext(ctx, name, args...)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// startDaemons starts virtlogd and libvirtd unless libvirt already answers;
// under systemd it asks systemd, elsewhere it starts them as daemons.
func startDaemons(ctx context.Context, g *globals) error {
	uri := vms.ResolveURI(g.connect)
	if hv, err := vms.Connect(ctx, uri); err == nil {
		hv.Close()
		fmt.Println("libvirtd: running")
		return nil
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if err := runLogged(ctx, "systemctl", "start", "virtlogd.socket", "libvirtd.socket", "libvirtd"); err != nil {
			return err
		}
	} else {
		fmt.Println("no service manager: starting virtlogd and libvirtd as daemons")
		if err := runLogged(ctx, "/usr/sbin/virtlogd", "-d"); err != nil && !daemonRunning("virtlogd") {
			return err
		}
		if err := runLogged(ctx, "/usr/sbin/libvirtd", "-d"); err != nil && !daemonRunning("libvirtd") {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		hv, err := vms.Connect(ctx, uri)
		if err == nil {
			hv.Close()
			fmt.Println("libvirtd: started")
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("libvirtd started but %s does not answer after 30 s: %w", uri, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// daemonRunning reports whether a process with that command name runs.
func daemonRunning(name string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if b, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(b)) == name {
			return true
		}
	}
	return false
}

// fixKVMPermissions gives /dev/kvm the group and mode udev gives it (kvm,
// 0660) on a machine where no udev runs. Without it libvirt finds KVM "not
// available now" for the qemu user while its probe found it, and re-probes
// QEMU's capabilities on every call (tens of seconds each).
func fixKVMPermissions() {
	if _, err := os.Stat("/run/udev/control"); err == nil {
		return // udev manages /dev/kvm.
	}
	fi, err := os.Stat("/dev/kvm")
	if err != nil {
		return
	}
	grp, err := user.LookupGroup("kvm")
	if err != nil {
		return
	}
	gid, err := strconv.Atoi(grp.Gid)
	if err != nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) == gid && fi.Mode().Perm()&0o060 == 0o060 {
		return
	}
	if err := os.Chown("/dev/kvm", 0, gid); err == nil && os.Chmod("/dev/kvm", 0o660) == nil {
		fmt.Println("/dev/kvm: set group kvm, mode 0660, as udev would (no udev runs here)")
	}
}
