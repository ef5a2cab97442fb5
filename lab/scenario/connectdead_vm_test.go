package scenario_test

import (
	"context"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab/labtest"
	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/scenario"
)

// runOnVMs executes one scenario variant in l and checks the client's
// error and that the verdict is expected.
func runOnVMs(t *testing.T, c vmCase, cfg scenario.Config) *scenario.Result {
	t.Helper()
	s, err := scenario.Lookup(c.scenario)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := scenario.Execute(ctx, s, c.opt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + res.Summary())
	if res.Observed.Error != c.want {
		t.Fatalf("observed %q, want %s", res.Observed.Error, c.want)
	}
	if !res.Complete {
		t.Fatalf("incomplete result: %s", res.Incomplete)
	}
	checkTimeline(t, res)
	if res.Verdict != model.Expected {
		t.Errorf("verdict %s: %s", res.Verdict, res.Why)
	}
	return res
}

// vmCase is one scenario variant run on VMs and the error it must give.
type vmCase struct {
	name, scenario string
	opt            scenario.Options
	want           string
}

// TestConnectDeadOnVMs connects to a live server without a listener (a
// RST at once: ECONNREFUSED) and to a powered-off one with two SYN retries
// (ETIMEDOUT at 7 s on a 6.1 guest, 7 s on 6.5+ too, by the time bound).
func TestConnectDeadOnVMs(t *testing.T) {
	labtest.Require(t)
	l := labtest.Up(t, labtest.Config(t, "t-connectdead"))
	cfg := scenario.Config{Lab: l, Out: t.TempDir(), Log: labtest.Logger(t)}
	for _, c := range []vmCase{
		{"no listener", "connect-dead", scenario.Options{Target: "no-listener"}, model.ECONNREFUSED},
		{"powered off, two SYN retries", "connect-dead", scenario.Options{Target: "off", Sysctls: []string{"client:net.ipv4.tcp_syn_retries=2"}}, model.ETIMEDOUT},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := runOnVMs(t, c, cfg)
			if res.FaultPin == "" || res.FaultUncertS == nil {
				t.Errorf("no pinned connect call: %q", res.FaultPin)
			}
		})
	}
}

// TestHangServerOnVMs stops the server's connection process under a
// flooding client with TCP_USER_TIMEOUT 5 s: the window closes, the live
// kernel answers the probes, and the user timeout ends it with ETIMEDOUT.
func TestHangServerOnVMs(t *testing.T) {
	labtest.Require(t)
	l := labtest.Up(t, labtest.Config(t, "t-hangserver"))
	cfg := scenario.Config{Lab: l, Out: t.TempDir(), Log: labtest.Logger(t)}
	res := runOnVMs(t, vmCase{"user timeout", "hang-server", scenario.Options{UserTimeout: 5 * time.Second}, model.ETIMEDOUT}, cfg)
	if res.Lateness == nil || res.Lateness.Timers == 0 {
		t.Errorf("no probe timer measured on the wire: %+v", res.Lateness)
	}
}
