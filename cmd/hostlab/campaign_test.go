package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostlabCmd runs hostlab's root command with args and a home of its own.
func hostlabCmd(t *testing.T, args ...string) error {
	t.Helper()
	cmd := newRootCmd()
	cmd.SetArgs(append(args, "--home", t.TempDir(), "--connect", "test:///nowhere"))
	cmd.SetOut(new(strings.Builder))
	cmd.SetErr(new(strings.Builder))
	return cmd.Execute()
}

// ownKernel writes a kernel of one's own, so that no apt is asked.
func ownKernel(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "modules", "6.1.0-test", "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vmlinux"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return "kernels:\n  - {kernel: vmlinux, modules: modules/6.1.0-test}\n"
}

// TestCampaignRefusedBeforeVMs: a bad file or parallelism is refused before
// anything is written or started.
func TestCampaignRefusedBeforeVMs(t *testing.T) {
	dir := t.TempDir()
	kernels := ownKernel(t, dir)
	bad := filepath.Join(dir, "bad.yaml")
	good := filepath.Join(dir, "good.yaml")
	_ = os.WriteFile(bad, []byte("scenarios: [power-off]\n"+kernels+"variants:\n  - {user-timeout: -6s}\n"), 0o644)
	_ = os.WriteFile(good, []byte("scenarios: [power-off]\n"+kernels), 0o644)
	out := filepath.Join(dir, "out")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"campaign", "run", bad, "--out", out}, bad + ":5:20: variants[0].user-timeout: --user-timeout -6s: must not be negative"},
		{[]string{"campaign", "plan", bad}, bad + ":5:20:"},
		{[]string{"campaign", "run", good, "--out", out, "--parallel", "9"}, "--parallel 9: at most 8"},
		{[]string{"campaign", "run", good, "--out", out, "--parallel", "0"}, "at least 1"},
		{[]string{"campaign", "run", good, "--out", out, "--lab-prefix", "Bad_"}, "--lab-prefix"},
		{[]string{"campaign", "run", good, "--out", out, "--grace", "0"}, "--grace 0s: must be positive"},
		{[]string{"campaign", "resume", dir}, "not a campaign folder"},
		{[]string{"campaign", "summary", dir}, "not a campaign folder"},
	} {
		err := hostlabCmd(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("hostlab %s: %v; want an error containing %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused campaign left %s behind (%v)", out, err)
	}
	if err := hostlabCmd(t, "campaign", "plan", good); err != nil {
		t.Errorf("plan of a good file: %v", err)
	}
}

func TestLabPrefix(t *testing.T) {
	a, err := labPrefix("", "/var/lib/hostlab/campaigns/x")
	b, _ := labPrefix("", "/var/lib/hostlab/campaigns/x")
	c, _ := labPrefix("", "/var/lib/hostlab/campaigns/y")
	if err != nil || a != b || a == c || !strings.HasPrefix(a, "camp-") {
		t.Errorf("prefixes %q %q %q, %v: want camp-HASH-, the same for one folder", a, b, c, err)
	}
	if _, err := labPrefix("a-very-long-prefix-for-labs-", "x"); err == nil {
		t.Error("a prefix too long for lab names accepted")
	}
}
