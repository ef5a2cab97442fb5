package lab

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostlab/hostlab/provision"
)

// TestLabFolderModes runs the keys step of Up with a umask of 0 and checks
// that the lab folder lets only QEMU's group in (traverse only) and that
// every secret in it — the client's private key, each initrd with a
// guest's private host key — is 0600.
func TestLabFolderModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("handing initrds to the QEMU user needs root")
	}
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	home := filepath.Join(t.TempDir(), "home") // created by the keys step
	base := filepath.Join(t.TempDir(), "base.cpio")
	if err := os.WriteFile(base, []byte("070701 not really an initrd"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Config{Name: "t-modes", Home: home, GuestBinary: "/bin/true"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := &upRun{cfg: cfg, dir: cfg.labDir(), img: provision.Image{Initrd: base}}
	if err := r.keys(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The folders above it, created on the way, let QEMU through.
	for _, p := range []string{cfg.Home, filepath.Dir(r.dir)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, %v; want 0755 (QEMU traverses it)", p, fi.Mode().Perm(), err)
		}
	}
	fi, err := os.Stat(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	_, gid, haveQEMU := qemuUser()
	wantDir := fs.FileMode(labDirModeFallback)
	if haveQEMU {
		wantDir = labDirMode
		if g := fi.Sys().(*syscall.Stat_t).Gid; int(g) != gid {
			t.Errorf("lab folder group %d, want QEMU's %d", g, gid)
		}
	}
	if fi.Mode().Perm() != wantDir {
		t.Errorf("lab folder mode %v, want %v", fi.Mode().Perm(), wantDir)
	}
	secrets := []string{filepath.Join(r.dir, clientKeyFile)}
	for _, g := range r.state.Guests {
		secrets = append(secrets, g.Initrd)
	}
	for _, p := range secrets {
		fi, err := os.Stat(p)
		want := fs.FileMode(secretMode)
		if !haveQEMU && strings.HasSuffix(p, ".initrd") {
			want = initrdModeFallback
		}
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", p, fi.Mode().Perm(), err, want)
		}
	}
	if err := filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == r.dir {
			return err
		}
		if fi, err := d.Info(); err == nil && fi.Mode().Perm()&0o002 != 0 {
			t.Errorf("%s is writable by others: %v", p, fi.Mode().Perm())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestParseBootSysctl(t *testing.T) {
	good := map[string]string{
		"client:net.ipv4.tcp_retries2=5":                      "client",
		"server:net.ipv4.tcp_rmem=4096,131072,6291456":        "server",
		"router:net.ipv4.neigh.eth1.delay_first_probe_time=1": "router",
	}
	for s, role := range good {
		if r, _, err := ParseBootSysctl(s); err != nil || r != role {
			t.Errorf("ParseBootSysctl(%q) = %q, %v", s, r, err)
		}
	}
	bad := map[string]string{
		"client:net.ipv4.tcp_retries2":                   "want ROLE:KEY=VALUE",
		"net.ipv4.tcp_retries2=5":                        "want ROLE:KEY=VALUE",
		"nobody:net.ipv4.tcp_retries2=5":                 "ROLE",
		"client:net/ipv4/tcp_retries2=5":                 "KEY",
		"client:../../etc=5":                             "KEY",
		"client:NET.ipv4.x=1":                            "KEY",
		"client:net.ipv4.tcp_retries2=":                  "VALUE is empty",
		"client:net.ipv4.tcp_retries2=5 init=/bin/sh":    "white space",
		"client:net.ipv4.tcp_retries2=5\thostlab.ssh=:1": "white space",
		`client:net.ipv4.tcp_retries2="5`:                "quote",
		"client:net.ipv4.tcp_retries2=5\x00":             "control character",
	}
	for s, want := range bad {
		_, _, err := ParseBootSysctl(s)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--sysctl") || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseBootSysctl(%q) = %v; want one line naming --sysctl and %q", s, err, want)
		}
	}
}

func TestSameSysctl(t *testing.T) {
	for _, c := range []struct {
		got, want string
		same      bool
	}{
		{"5\n", "5", true},
		{"4096\t131072\t6291456\n", "4096 131072 6291456", true},
		{"1\n", "01", true},
		{"15\n", "abc", false},
		{"15\n", "5", false},
		{"4096\t131072\n", "4096 131072 6291456", false},
		{"cubic\n", "cubic", true},
	} {
		if got := sameSysctl(c.got, c.want); got != c.same {
			t.Errorf("sameSysctl(%q, %q) = %v", c.got, c.want, got)
		}
	}
}

// TestValidateUp refuses what Up cannot do before it creates anything.
func TestValidateUp(t *testing.T) {
	home := t.TempDir()
	file := filepath.Join(home, "file")
	os.WriteFile(file, nil, 0o644)
	damaged := t.TempDir()
	os.MkdirAll(filepath.Join(damaged, "cache"), 0o755)
	os.WriteFile(filepath.Join(damaged, "cache", "images"), []byte("junk"), 0o644)
	total, err := hostMemMiB()
	if err != nil {
		t.Fatal(err)
	}
	ok := Config{Name: "t", Home: home, URI: "qemu:///system", MemoryMiB: 128, Grace: time.Second, GuestBinary: "/bin/true"}
	if err := ok.validateUp(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"memory below a guest's", func(c *Config) { c.MemoryMiB = 32 }, "--memory 32"},
		{"memory beyond the host", func(c *Config) { c.MemoryMiB = total }, "exceed this host's"},
		{"negative grace", func(c *Config) { c.Grace = -time.Second }, "--grace -1s"},
		{"router sysctl without router", func(c *Config) { c.Sysctls = map[string][]string{"router": {"net.ipv4.ip_forward=1"}} }, "has no router"},
		{"sysctl injecting the command line", func(c *Config) { c.Sysctls = map[string][]string{"client": {"net.ipv4.tcp_retries2=5 init=/bin/sh"}} }, "white space"},
		{"missing kernel", func(c *Config) { c.Kernel.Image = "/nope" }, "--kernel /nope"},
		{"modules not a folder", func(c *Config) { c.Kernel.ModulesDir = file }, "--modules " + file},
		{"home is a file", func(c *Config) { c.Home = file }, "not a folder"},
		{"home cannot be created", func(c *Config) { c.Home = "/proc/hostlab-test" }, "cannot create folders"},
		{"damaged cache", func(c *Config) { c.Home = damaged }, "cache/images is not a folder"},
	}
	for _, c := range cases {
		cfg := ok
		c.mod(&cfg)
		err := cfg.validateUp()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v; want one line with %q", c.name, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(home); len(entries) != 1 {
		t.Errorf("validateUp left files in home: %v", entries)
	}
}
