package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/scenario"
)

func TestVerdictStatus(t *testing.T) {
	for v, want := range map[model.Verdict]int{
		model.Expected:   0,
		model.Unexpected: 3,
		model.Unknown:    4,
		model.Verdict(7): 4, // not a verdict: never passes
	} {
		if got := verdictStatus(v); got != want {
			t.Errorf("verdictStatus(%v) = %d; want %d", v, got, want)
		}
	}
}

// TestBadDurationFlags runs the real commands: each must refuse the value
// before doing anything, with one line naming the flag.
func TestBadDurationFlags(t *testing.T) {
	tests := []struct {
		args []string
		flag string
	}{
		{[]string{"up", "--grace", "-3s"}, "--grace -3s: must not be negative"},
		{[]string{"up", "--grace", "0"}, "--grace 0s: must be positive"},
		{[]string{"bench", "up", "--grace", "-1s"}, "--grace"},
		{[]string{"bench", "verdicts", "--grace", "0s"}, "--grace"},
		{[]string{"run", "shutdown", "--grace", "-1s"}, "--grace"},
		{[]string{"run", "kill-server", "--interval", "-1s"}, "--interval -1s: must not be negative"},
		{[]string{"run", "kill-server", "--interval", "0"}, "--interval 0s: must be positive"},
		{[]string{"run", "power-off", "--user-timeout", "-6s"}, "--user-timeout -6s"},
		{[]string{"run", "kill-server", "--read-timeout", "-1ms"}, "--read-timeout -1ms"},
		{[]string{"run", "power-off", "--max-wait", "-1m"}, "--max-wait -1m0s"},
		{[]string{"run", "crash-reboot", "--reboot", "power-cycle", "--down", "-5s"}, "--down -5s"},
		{[]string{"run", "crash-reboot", "--reboot", "power-cycle", "--down", "0"}, "--down 0s: must be positive"},
	}
	for _, tt := range tests {
		cmd := newRootCmd()
		cmd.SetArgs(append(tt.args, "--home", t.TempDir(), "--connect", "test:///nowhere"))
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tt.flag) || strings.Contains(err.Error(), "\n") {
			t.Errorf("hostlab %s: error %v; want one line containing %q", strings.Join(tt.args, " "), err, tt.flag)
		}
	}
}

func TestGoodDurationFlags(t *testing.T) {
	cmd := newRunCmd(&globals{})
	args := []string{"--grace", "1s", "--interval", "500ms", "--user-timeout", "0", "--read-timeout", "0", "--max-wait", "0", "--down", "2s"}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := checkDurations(cmd); err != nil {
		t.Errorf("checkDurations(%q) = %v", args, err)
	}
	// Defaults are never refused, --down's 0 included.
	if err := checkDurations(newRunCmd(&globals{})); err != nil {
		t.Errorf("checkDurations(defaults) = %v", err)
	}
}

func TestParseVariant(t *testing.T) {
	opt, err := parseVariant([]string{"--idle", "--keepalive", "3s,1s,3", "--sysctl", "client:net.ipv4.tcp_retries2=5", "--user-timeout", "6s"})
	want := scenario.Options{Idle: true, Keepalive: "3s,1s,3", Sysctls: []string{"client:net.ipv4.tcp_retries2=5"},
		UserTimeout: 6 * time.Second}
	if err != nil || opt.Idle != want.Idle || opt.Keepalive != want.Keepalive || opt.UserTimeout != want.UserTimeout ||
		opt.Interval != want.Interval || len(opt.Sysctls) != 1 || opt.Sysctls[0] != want.Sysctls[0] {
		t.Errorf("parseVariant = %+v, %v; want %+v", opt, err, want)
	}
	for _, bad := range [][]string{{"--read", "poll"}, {"--interval", "-1s"}, {"--nope"}, {"stray"}, {"--keepalive", "on"}} {
		if _, err := parseVariant(bad); err == nil {
			t.Errorf("parseVariant(%q) accepted", bad)
		}
	}
}
