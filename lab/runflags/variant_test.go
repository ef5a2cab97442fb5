package runflags

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCanonical(t *testing.T) {
	a, err := Parse([]string{"--user-timeout", "6000ms", "--idle", "--sysctl", "client:b.c=1", "--sysctl=client:a.b=2"}, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]string{"--sysctl=client:b.c=1", "--idle=true", "--sysctl", "client:a.b=2", "--user-timeout=6s"}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--idle", "--sysctl=client:b.c=1", "--sysctl=client:a.b=2", "--user-timeout=6s"}
	if !slices.Equal(a.Canonical, want) || !slices.Equal(b.Canonical, want) {
		t.Errorf("canonical forms %q and %q; want %q", a.Canonical, b.Canonical, want)
	}
	if a.Options.UserTimeout != 6*time.Second || !a.Options.Idle || len(a.Options.Sysctls) != 2 {
		t.Errorf("options %+v", a.Options)
	}
	c, err := Parse([]string{"--idle=false"}, "")
	if err != nil || !slices.Equal(c.Canonical, []string{"--idle=false"}) {
		t.Errorf("--idle=false: %q, %v", c.Canonical, err)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "unknown flag: --nope"},
		{[]string{"--help"}, "unknown flag: --help"},
		{[]string{"stray"}, "unexpected arguments"},
		{[]string{"--read", "poll"}, "--read"},
		{[]string{"--interval", "0"}, "--interval 0s: must be positive"},
		{[]string{"--interval", "-20ms"}, "--interval -20ms: must not be negative"},
		{[]string{"--target", "bogus"}, `--target "bogus": use off or no-listener`},
		{[]string{"--neigh", "hot"}, `--neigh "hot": use warm or cold`},
		{[]string{"--user-timeout", "six"}, "user-timeout"},
		{[]string{"--keepalive", "on"}, "--keepalive"},
		{[]string{"--client", "no/such/file"}, "--client"},
		{[]string{"--client", ""}, "--client"},
		{[]string{"--client", "/etc/passwd"}, "cannot run in the guest"},
		{[]string{"--link", "delay -5ms"}, "--link"},
	} {
		_, err := Parse(tt.args, "")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v; want an error containing %q", tt.args, err, tt.want)
		}
	}
}

// TestParseConnectDeadAndHangServer: connect-dead's and hang-server's
// flags parse into options and one canonical form; --interval left out is
// 0, the scenario's default.
func TestParseConnectDeadAndHangServer(t *testing.T) {
	p, err := Parse([]string{"--target", "no-listener", "--neigh=cold"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Options.Target != "no-listener" || p.Options.Neigh != "cold" || p.Options.Interval != 0 {
		t.Errorf("options %+v", p.Options)
	}
	if want := []string{"--neigh=cold", "--target=no-listener"}; !slices.Equal(p.Canonical, want) {
		t.Errorf("canonical %q; want %q", p.Canonical, want)
	}
	p, err = Parse([]string{"--interval", "20ms", "--user-timeout", "5s"}, "")
	if err != nil || p.Options.Interval != 20*time.Millisecond || !slices.Equal(p.Canonical, []string{"--interval=20ms", "--user-timeout=5s"}) {
		t.Errorf("--interval 20ms: %+v, %q, %v", p.Options, p.Canonical, err)
	}
}

func TestClientPathFromDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "my-client"), []byte("#!/bin/sh\nexec cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]string{"--client", "my-client"}, dir)
	if err != nil || string(p.Options.Client) != filepath.Join(dir, "my-client") {
		t.Errorf("relative client: %+v, %v", p.Options.Client, err)
	}
	if !slices.Equal(p.Canonical, []string{"--client=my-client"}) {
		t.Errorf("canonical keeps the path as written: %q", p.Canonical)
	}
}

func TestNames(t *testing.T) {
	names := Names()
	for _, n := range []string{"client", "keepalive", "user-timeout", "idle", "sysctl", "target", "neigh", "link", "max-wait"} {
		if !slices.Contains(names, n) {
			t.Errorf("Names() lacks %s: %q", n, names)
		}
	}
	if slices.Contains(names, "lab") || slices.Contains(names, "out") {
		t.Errorf("Names() holds run's non-variant flags: %q", names)
	}
}
