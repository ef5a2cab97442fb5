package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/hostlab/hostlab/provision"
)

// minGuestMiB is the least RAM a guest boots with.
const minGuestMiB = 64

// bootSysctlKey is a sysctl key a guest's init accepts at boot: dotted,
// lowercase, no "/" and no "..".
var bootSysctlKey = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)+$`)

// ParseBootSysctl splits "ROLE:KEY=VALUE", a sysctl a guest's init applies
// at boot (up --sysctl), and reports a bad one as a one-line error naming
// the flag and the fix. The value travels on the kernel command line, so it
// cannot hold white space or quotes.
func ParseBootSysctl(s string) (role, kv string, err error) {
	role, kv, ok := strings.Cut(s, ":")
	if !ok || !strings.Contains(kv, "=") {
		return "", "", fmt.Errorf("--sysctl %q: want ROLE:KEY=VALUE, e.g. client:net.ipv4.tcp_retries2=5", s)
	}
	if err := checkBootSysctl(role, kv); err != nil {
		return "", "", fmt.Errorf("--sysctl %q: %w", s, err)
	}
	return role, kv, nil
}

// checkBootSysctl checks one boot sysctl KEY=VALUE of a guest role.
func checkBootSysctl(role, kv string) error {
	key, value, _ := strings.Cut(kv, "=")
	switch {
	case ValidateRole(role) != nil:
		return fmt.Errorf("ROLE %q: use client or server (or router in a routed lab), e.g. client:net.ipv4.tcp_retries2=5", role)
	case !bootSysctlKey.MatchString(key):
		return fmt.Errorf("KEY %q must be a dotted sysctl name (lowercase letters, digits, '_', '-'; no '/' or '..'), e.g. net.ipv4.tcp_retries2", key)
	case value == "":
		return fmt.Errorf("VALUE is empty: give one, e.g. %s:%s=5", role, key)
	case strings.ContainsAny(value, " \t\""):
		return fmt.Errorf("VALUE %q holds white space or a quote, which the kernel command line cannot carry: give it to `hostlab run --sysctl` instead (applied at run time)", value)
	case strings.ContainsFunc(value, func(r rune) bool { return !unicode.IsPrint(r) }):
		return fmt.Errorf("VALUE %q holds a control character: use printable characters", value)
	}
	return nil
}

// validateUp checks what Up is asked for before anything is created: the
// guests' memory against the host's, the grace, the boot sysctls, the
// kernel files given and the home folder. Each error is one line naming the
// input and the fix.
func (c Config) validateUp() error {
	guests := len(guestRoles(c.Routed))
	switch {
	case c.MemoryMiB < minGuestMiB:
		return fmt.Errorf("--memory %d: a guest needs at least %d MiB: give e.g. --memory 128", c.MemoryMiB, minGuestMiB)
	case c.Grace < 0:
		return fmt.Errorf("--grace %s: must not be negative: give e.g. --grace 5s", c.Grace)
	}
	if isLocalURI(c.URI) {
		if total, err := hostMemMiB(); err == nil && c.MemoryMiB*guests > total {
			return fmt.Errorf("--memory %d: %d guests × %d MiB exceed this host's %d MiB of RAM: give at most --memory %d (128 is plenty)",
				c.MemoryMiB, guests, c.MemoryMiB, total, max(total/guests, minGuestMiB))
		}
	}
	for _, role := range slices.Sorted(maps.Keys(c.Sysctls)) {
		if !c.Routed && role == RoleRouter {
			return fmt.Errorf("--sysctl router:…: lab %s has no router: bring it up with --routed, or drop the router sysctls", c.Name)
		}
		for _, kv := range c.Sysctls[role] {
			if err := checkBootSysctl(role, kv); err != nil {
				return fmt.Errorf("--sysctl %q: %w", role+":"+kv, err)
			}
		}
	}
	for _, f := range []struct{ flag, path string }{{"--kernel", c.Kernel.Image}, {"--modules", c.Kernel.ModulesDir}} {
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		switch {
		case err != nil:
			return fmt.Errorf("%s %s: %v: give an existing path", f.flag, f.path, unwrapPath(err))
		case f.flag == "--kernel" && !fi.Mode().IsRegular():
			return fmt.Errorf("--kernel %s: not a regular file: give the kernel image (vmlinux or bzImage)", f.path)
		case f.flag == "--modules" && !fi.IsDir():
			return fmt.Errorf("--modules %s: not a folder: give the kernel's lib/modules/RELEASE folder", f.path)
		}
	}
	return checkHome(c.Home)
}

// checkHome checks that home can hold hostlab's cache and labs: it is a
// folder (or can be created) that this process can create folders in, and
// the folders hostlab keeps there, where they exist, are folders.
func checkHome(home string) error {
	for _, sub := range []string{"", "cache", "labs", filepath.Join("cache", "images"), filepath.Join("cache", "kernels")} {
		p := filepath.Join(home, sub)
		fi, err := os.Stat(p)
		if err == nil && !fi.IsDir() {
			if sub == "" {
				return fmt.Errorf("--home %s: not a folder: give a folder (or set HOSTLAB_HOME to one)", home)
			}
			return fmt.Errorf("--home %s: %s is not a folder (a damaged cache or lab area): remove it, hostlab rebuilds what it needs", home, p)
		}
	}
	p := home
	for {
		fi, err := os.Stat(p)
		if err == nil && fi.IsDir() {
			break
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--home %s: %v: give a folder hostlab can write in", home, unwrapPath(err))
		}
		if err == nil {
			return fmt.Errorf("--home %s: %s is not a folder: give a folder hostlab can write in", home, p)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("--home %s: no existing parent folder: give a folder hostlab can write in", home)
		}
		p = parent
	}
	// Try to create a folder there, and leave nothing behind: root passes
	// access(2) in places it cannot create in (/proc, read-only mounts).
	probe, err := os.MkdirTemp(p, ".hostlab-probe-")
	if err != nil {
		return fmt.Errorf("--home %s: cannot create folders in %s (%v): give a folder hostlab can write in", home, p, unwrapPath(err))
	}
	return os.Remove(probe)
}

// unwrapPath drops the operation and path a *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hostMemMiB reads the host's RAM from /proc/meminfo.
func hostMemMiB() (int, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				return 0, fmt.Errorf("parse MemTotal: %w", err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no MemTotal in /proc/meminfo")
}

// checkBootSysctls reads back, in each guest, the sysctls its init applied
// at boot (by role): a key the guest kernel lacks or a value it refused is
// only found there, and the init merely logs it on the console. Each error
// is one line naming the --sysctl and the fix.
func (l *Lab) checkBootSysctls(ctx context.Context, want map[string][]string) error {
	for _, role := range slices.Sorted(maps.Keys(want)) {
		if len(want[role]) == 0 {
			continue
		}
		c, err := l.Dial(ctx, role)
		if err != nil {
			return err
		}
		err = checkSysctlsIn(ctx, c, role, l.State.KernelRelease, want[role])
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// checkSysctlsIn reads back kvs (KEY=VALUE, keys checked by checkBootSysctl)
// in one guest.
func checkSysctlsIn(ctx context.Context, c *provision.Client, role, release string, kvs []string) error {
	for _, kv := range kvs {
		key, value, _ := strings.Cut(kv, "=")
		path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
		out, err := c.Output(ctx, "cat "+path)
		var ee *provision.ExitError
		switch {
		case errors.As(err, &ee):
			return fmt.Errorf("--sysctl %s:%s: the %s guest's kernel %s has no such sysctl (%s): fix KEY", role, kv, role, release, path)
		case err != nil:
			return fmt.Errorf("--sysctl %s:%s: read it back in the %s guest: %w", role, kv, role, err)
		case !sameSysctl(string(out), value):
			return fmt.Errorf("--sysctl %s:%s: the %s guest's kernel refused the value and holds %q: give a value it accepts", role, kv, role, strings.Join(strings.Fields(string(out)), " "))
		}
	}
	return nil
}

// sameSysctl compares a sysctl as read back with the value written, field
// by field (the kernel prints vectors with tabs), numbers as numbers ("01"
// reads back as "1").
func sameSysctl(got, want string) bool {
	g, w := strings.Fields(got), strings.Fields(want)
	if len(g) != len(w) {
		return false
	}
	for i := range g {
		if g[i] == w[i] {
			continue
		}
		gi, err1 := strconv.ParseInt(g[i], 10, 64)
		wi, err2 := strconv.ParseInt(w[i], 10, 64)
		if err1 != nil || err2 != nil || gi != wi {
			return false
		}
	}
	return true
}
