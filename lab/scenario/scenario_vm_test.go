package scenario_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab/labtest"
	"github.com/hostlab/hostlab/lab/scenario"
	"github.com/hostlab/hostlab/lab/timeline"
)

// TestScenariosOnVMs runs every scenario once against real guests, with
// shortened kernel timers, and checks the error the client observed.
func TestScenariosOnVMs(t *testing.T) {
	labtest.Require(t)
	cfg := labtest.Config(t, "t-scenarios")
	cfg.Grace = 2 * time.Second
	l := labtest.Up(t, cfg)
	short := []string{"client:net.ipv4.tcp_retries2=5"}
	cases := []struct {
		name     string
		scenario string
		opt      scenario.Options
		want     []string
	}{
		{"kill-server", "kill-server", scenario.Options{}, []string{"EOF", "ECONNRESET"}},
		{"kill-server event-driven", "kill-server", scenario.Options{Read: "event"}, []string{"EOF"}},
		{"sigpipe default", "sigpipe", scenario.Options{}, []string{"SIGPIPE"}},
		{"sigpipe ignored", "sigpipe", scenario.Options{SigpipeIgnore: true}, []string{"EPIPE"}},
		{"power-off", "power-off", scenario.Options{Sysctls: short}, []string{"ETIMEDOUT", "EHOSTUNREACH"}},
		{"power-off idle keepalive", "power-off", scenario.Options{Idle: true, Keepalive: "3s,1s,3"}, []string{"ETIMEDOUT", "EHOSTUNREACH"}},
		{"power-off user timeout", "power-off", scenario.Options{UserTimeout: 6 * time.Second}, []string{"ETIMEDOUT", "EHOSTUNREACH"}},
		// tcp_retries2=8 (bound 102.2 s): the client still retransmits when a
		// slowly rebooting server comes back, so the RST, not the abort, ends it.
		{"crash-reboot", "crash-reboot", scenario.Options{Sysctls: []string{"client:net.ipv4.tcp_retries2=8"}}, []string{"ECONNRESET"}},
		{"shutdown closing server", "shutdown", scenario.Options{ServerSigterm: "close"}, []string{"EOF", "ECONNRESET"}},
		{"shutdown ignoring server", "shutdown", scenario.Options{ServerSigterm: "ignore"}, []string{"EOF", "ECONNRESET"}},
	}
	out := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := scenario.Lookup(c.scenario)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			res, err := scenario.Execute(ctx, s, c.opt, scenario.Config{Lab: l, Out: out, Log: labtest.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + res.Summary())
			if !slices.Contains(c.want, res.Observed.Error) {
				t.Fatalf("observed %q, want one of %v", res.Observed.Error, c.want)
			}
			if !res.Complete || res.Observed.DetectS == nil {
				t.Fatalf("incomplete result: %+v", res)
			}
			checkTimeline(t, res)
			// A verdict other than expected is a finding, reported, not a
			// test failure — but it must be a real verdict with a reason.
			if res.Why == "" {
				t.Fatalf("verdict %v without a reason", res.Verdict)
			}
		})
	}
}

// TestUnreachableOnVMs powers the server off behind a router guest: the
// router's ICMP host unreachable must surface as EHOSTUNREACH at the abort,
// and a new connect must fail fast.
func TestUnreachableOnVMs(t *testing.T) {
	labtest.Require(t)
	cfg := labtest.Config(t, "t-routed")
	cfg.Routed = true
	l := labtest.Up(t, cfg)
	s, err := scenario.Lookup("unreachable")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Short router neighbour timers make the router give up on the dead
	// server well before tcp_retries2=5 aborts.
	opt := scenario.Options{Sysctls: []string{
		"client:net.ipv4.tcp_retries2=5",
		"router:net.ipv4.neigh.eth1.base_reachable_time_ms=1000",
		"router:net.ipv4.neigh.eth1.delay_first_probe_time=1",
	}}
	res, err := scenario.Execute(ctx, s, opt, scenario.Config{Lab: l, Out: t.TempDir(), Log: labtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + res.Summary())
	if res.Observed.Error != "EHOSTUNREACH" {
		t.Fatalf("observed %q, want EHOSTUNREACH", res.Observed.Error)
	}
	checkTimeline(t, res)
	if !strings.Contains(res.Followup, "EHOSTUNREACH") {
		t.Fatalf("second connect: %q, want EHOSTUNREACH", res.Followup)
	}
}

// checkTimeline reads the run's timeline.jsonl back: complete, with the
// fault window and the client's own record of what it observed.
func checkTimeline(t *testing.T, res *scenario.Result) {
	t.Helper()
	evs, err := timeline.Read(filepath.Join(res.RunDir, timeline.FileName))
	if err != nil {
		t.Fatalf("read timeline: %v", err)
	}
	if complete, reason := timeline.Completion(evs); !complete {
		t.Fatalf("timeline incomplete: %s", reason)
	}
	if w := timeline.Windows(evs); len(w) != 1 || !w[0].Complete {
		t.Fatalf("fault windows %+v, want one complete", w)
	}
	if res.Observed.Error == "SIGPIPE" {
		return // A process killed by a signal writes no last event.
	}
	for _, e := range evs {
		var d struct {
			Errno string `json:"errno"`
		}
		if e.Src == timeline.SrcClient && (e.Ev == "eof" || e.Ev == "error") && e.DecodeData(&d) == nil && d.Errno == res.Observed.Error {
			return
		}
	}
	t.Fatalf("timeline has no client event for %s", res.Observed.Error)
}
