package scenario_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab/labtest"
	"github.com/hostlab/hostlab/lab/scenario"
	"github.com/hostlab/hostlab/provision"
)

// TestSysctlBaselineOnVMs checks that every run starts from the lab's
// sysctl baseline and leaves the lab at it: a run's overrides (one with
// spaces, which reaches the guest as data) hold during the run and are
// undone at its end, a failed run is cleaned up too, and a leftover of a
// killed run is undone before the next run.
func TestSysctlBaselineOnVMs(t *testing.T) {
	labtest.Require(t)
	cfg := labtest.Config(t, "t-sysctl")
	cfg.Grace = 2 * time.Second
	l := labtest.Up(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	client, err := l.Dial(ctx, "client")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// cat reads a sysctl the plain way, independently of hostlab-sysctl.
	cat := func(key string) string {
		t.Helper()
		out, err := client.Output(ctx, "cat /proc/sys/"+strings.ReplaceAll(key, ".", "/"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(string(out)), " ")
	}
	const retries2, rmem = "net.ipv4.tcp_retries2", "net.ipv4.tcp_rmem"
	baseRetries2, baseRmem := cat(retries2), cat(rmem)
	if baseRetries2 != "15" {
		t.Fatalf("fresh client: tcp_retries2 %s, want the kernel's 15", baseRetries2)
	}
	t.Logf("client baseline: tcp_retries2 %s, tcp_rmem %s", baseRetries2, baseRmem)
	g, err := l.State.Guest("client")
	if err != nil {
		t.Fatal(err)
	}
	console, _ := os.ReadFile(g.Console)
	if i := strings.Index(string(console), "sysctl baseline:"); i < 0 || strings.Contains(string(console), "sysctl baseline: FAILED") {
		t.Errorf("the client's init did not snapshot its baseline cleanly:\n%s", console)
	} else {
		line, _, _ := strings.Cut(string(console[i:]), "\n")
		t.Logf("client console: %s", strings.TrimSpace(line))
	}
	s, err := scenario.Lookup("kill-server")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	run := func(opt scenario.Options) *scenario.Result {
		t.Helper()
		res, err := scenario.Execute(ctx, s, opt, scenario.Config{Lab: l, Out: out, Log: labtest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(res.Config, "", "  ")
		t.Logf("config: %s", b)
		return res
	}

	// A run with overrides: in force during the run, baseline beside them,
	// undone at the end.
	const wantRmem = "4096 131072 6291456"
	res := run(scenario.Options{Sysctls: []string{"client:" + retries2 + "=7", "client:" + rmem + "=" + wantRmem}})
	c := res.Config
	if got := c.SysctlOverrides["client"]; got[retries2] != "7" || got[rmem] != wantRmem {
		t.Errorf("sysctl_overrides = %v", c.SysctlOverrides)
	}
	if got := c.Sysctls["client"]; got[retries2] != "7" || got[rmem] != wantRmem {
		t.Errorf("sysctls in force = %v", got)
	}
	if got := c.SysctlBaseline["client"]; got[retries2] != baseRetries2 || got[rmem] != baseRmem {
		t.Errorf("sysctl_baseline = %v", got)
	}
	if got := c.SysctlBaseline["server"][retries2]; got != "15" {
		t.Errorf("server baseline tcp_retries2 %q, want 15", got)
	}
	if len(c.SysctlRestoredBefore) != 0 {
		t.Errorf("a fresh lab had leftovers: %v", c.SysctlRestoredBefore)
	}
	if got := c.SysctlRestoredAfter["client"][retries2]; got != (scenario.SysctlChange{Was: "7", Now: "15"}) {
		t.Errorf("sysctl_restored_after = %v", c.SysctlRestoredAfter)
	}
	if got, got2 := cat(retries2), cat(rmem); got != baseRetries2 || got2 != baseRmem {
		t.Fatalf("after the run: tcp_retries2 %s, tcp_rmem %s; want the baseline %s, %s", got, got2, baseRetries2, baseRmem)
	}

	// A run that fails after the client's overrides were applied (the
	// server refuses its value) leaves the client at its baseline too.
	partial, err := scenario.Execute(ctx, s, scenario.Options{Sysctls: []string{"client:" + retries2 + "=7", "server:" + retries2 + "=seven"}},
		scenario.Config{Lab: l, Out: out, Log: labtest.Logger(t)})
	if err == nil || !strings.Contains(err.Error(), "--sysctl") {
		t.Fatalf("run with a refused value: %v, want an error naming --sysctl", err)
	}
	t.Logf("refused as it should: %v", err)
	if partial == nil || partial.Config.SysctlRestoredAfter["client"][retries2] != (scenario.SysctlChange{Was: "7", Now: "15"}) {
		t.Errorf("failed run's partial result does not record the client's restore: %+v", partial)
	}
	if got := cat(retries2); got != baseRetries2 {
		t.Fatalf("after a failed run: tcp_retries2 %s, want the baseline %s", got, baseRetries2)
	}

	// A leftover, as a killed run would leave it: undone before the next
	// run, and recorded.
	if _, err := client.Output(ctx, "sysctl -w "+retries2+"=9"); err != nil {
		t.Fatal(err)
	}
	res = run(scenario.Options{})
	c = res.Config
	if got := c.Sysctls["client"][retries2]; got != "15" {
		t.Errorf("in force after a leftover: tcp_retries2 %q, want 15", got)
	}
	if got := c.SysctlRestoredBefore["client"]; len(got) != 1 || got[retries2] != (scenario.SysctlChange{Was: "9", Now: "15"}) {
		t.Errorf("sysctl_restored_before = %v, want only client tcp_retries2 9 -> 15", c.SysctlRestoredBefore)
	}
	if len(c.SysctlRestoredBefore) != 1 || len(c.SysctlOverrides) != 0 || len(c.SysctlRestoredAfter) != 0 {
		t.Errorf("restored before %v, overrides %v, restored after %v: want only the client's leftover",
			c.SysctlRestoredBefore, c.SysctlOverrides, c.SysctlRestoredAfter)
	}
	var exit *provision.ExitError
	if _, err := client.Output(ctx, "echo '{\"net.ipv4.tcp_retries2\":\"7\",\"net/ipv4/x\":\"1\"}' | hostlab-sysctl apply"); err == nil {
		t.Error("hostlab-sysctl apply took a key with '/'")
	} else if !errors.As(err, &exit) || exit.Status != 2 {
		t.Errorf("hostlab-sysctl apply with a bad key: %v, want exit status 2", err)
	}
	if got := cat(retries2); got != baseRetries2 {
		t.Errorf("a refused apply changed tcp_retries2 to %s", got)
	}
}
