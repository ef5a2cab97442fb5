package lab

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFreeSpace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	if err := CheckFreeSpace(dir, 1); err != nil {
		t.Fatalf("1 byte under a missing folder: %v", err)
	}
	if err := CheckFreeSpace(dir, 1<<62); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("4 EiB: %v, want ErrDiskFull", err)
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"default", "a", "lab-2", "x0123456789012345678901234567890"[:31]} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "Lab", "a/b", "a b", "x0123456789012345678901234567890"} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("ValidateName(%q) accepted", bad)
		}
	}
}

func TestGuestCmdline(t *testing.T) {
	g := GuestState{Role: "client", MgmtMAC: "52:54:00:00:00:01", Links: []LinkState{
		{MAC: "52:54:00:00:00:02", IP: "192.168.77.1", Prefix: 24, Gateway: "192.168.77.254"},
	}}
	got := guestCmdline(g, 0, []string{"net.ipv4.tcp_retries2=5"})
	for _, want := range []string{
		"hostlab.name=client", "hostlab.net=52:54:00:00:00:01,10.0.2.15/24 ",
		"hostlab.net=52:54:00:00:00:02,192.168.77.1/24,192.168.77.254", "hostlab.ssh=10.0.2.15:22",
		"hostlab.sysctl=net.ipv4.tcp_retries2=5",
	} {
		if !contains(got, want) {
			t.Errorf("cmdline %q lacks %q", got, want)
		}
	}
}

func TestTopology(t *testing.T) {
	for _, routed := range []bool{false, true} {
		links := topology(routed)
		seen := map[string]bool{}
		for _, l := range links {
			for _, e := range l {
				seen[e.role] = true
			}
		}
		for _, role := range guestRoles(routed) {
			if !seen[role] {
				t.Errorf("routed=%v: guest %s has no link", routed, role)
			}
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
