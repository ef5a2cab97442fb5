package vms

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// runningFake returns a hypervisor on a fake with the test server running.
func runningFake(t *testing.T) (*fakeLibvirt, *Hypervisor, string) {
	t.Helper()
	ctx := context.Background()
	f := newFake()
	h := newHypervisor(f, "test:///fake")
	m := testMachine("server")
	if err := h.Define(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	return f, h, m.Name
}

func TestCutPowerPausesThenDestroys(t *testing.T) {
	ctx := context.Background()
	f, h, name := runningFake(t)
	f.delay = map[string]time.Duration{"suspend": 20 * time.Millisecond}
	cut, err := h.CutPower(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, ";"); got != "suspend "+name+";destroy "+name {
		t.Fatalf("calls = %s, want the pause, then the destroy", got)
	}
	if st, _ := h.State(ctx, name); st != StateShutoff {
		t.Fatalf("state after CutPower = %s, want shut off", st)
	}
	// The fake pauses 20 ms into the call, then sends the event and returns.
	if cut.PauseStart.IsZero() || cut.Paused.Sub(cut.PauseStart) < 20*time.Millisecond ||
		cut.PauseReturned.Before(cut.Paused) || cut.Destroyed.Before(cut.PauseReturned) {
		t.Fatalf("instants %+v: want start, pause (>= 20 ms later), the call's return, then the destroy", cut)
	}
	if at := cut.At(); at.Before(cut.PauseStart) || at.After(cut.Paused) ||
		at.Sub(cut.PauseStart) < cut.Uncert()-time.Nanosecond || cut.Paused.Sub(at) > cut.Uncert() {
		t.Fatalf("At %v ± %v does not cover the pause window %+v exactly", at, cut.Uncert(), cut)
	}
}

func TestCutPowerPauseFailureDestroysNothing(t *testing.T) {
	ctx := context.Background()
	f, h, name := runningFake(t)
	refused := libvirt.Error{Code: uint32(libvirt.ErrOperationFailed), Message: "operation failed: pause refused"}
	f.fail = map[string]error{"suspend": refused}
	cut, err := h.CutPower(ctx, name)
	var lerr libvirt.Error
	if !errors.As(err, &lerr) || lerr.Code != refused.Code {
		t.Fatalf("CutPower = %v, want the pause's libvirt error", err)
	}
	if cut != (PowerCut{}) {
		t.Fatalf("a failed pause returned instants %+v", cut)
	}
	if got := strings.Join(f.calls, ";"); got != "suspend "+name {
		t.Fatalf("calls = %s, want the pause alone (no destroy in its place)", got)
	}
	if st, _ := h.State(ctx, name); st != StateRunning {
		t.Fatalf("state = %s, want the domain left running", st)
	}
}

func TestCutPowerDestroyFailureLeavesItPaused(t *testing.T) {
	ctx := context.Background()
	f, h, name := runningFake(t)
	f.fail = map[string]error{"destroy": libvirt.Error{Code: uint32(libvirt.ErrOperationFailed), Message: "operation failed: destroy refused"}}
	cut, err := h.CutPower(ctx, name)
	if err == nil || !strings.Contains(err.Error(), "destroy refused") {
		t.Fatalf("CutPower = %v, want the destroy's error", err)
	}
	if cut.Paused.IsZero() || cut.PauseReturned.IsZero() || !cut.Destroyed.IsZero() {
		t.Fatalf("instants %+v: want the pause's, no destroy", cut)
	}
	if st, _ := h.State(ctx, name); st != StatePaused {
		t.Fatalf("state = %s, want paused", st)
	}
}

func TestCutPowerUnknownDomain(t *testing.T) {
	_, h, _ := runningFake(t)
	if _, err := h.CutPower(context.Background(), "hostlab-nope-server"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CutPower of an unknown domain = %v, want ErrNotFound", err)
	}
}

func TestTimedCallHonoursDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	block := make(chan struct{})
	defer close(block)
	if _, _, err := timedCall(ctx, "stuck call", func() error { <-block; return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("timedCall = %v, want context.Canceled", err)
	}
}

func TestFirstSuspended(t *testing.T) {
	t0 := time.Unix(1000, 0)
	start, returned := t0, t0.Add(30*time.Millisecond)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	cases := []struct {
		name string
		evs  []Event
		want time.Time
	}{
		{"no event: the call's return", nil, returned},
		{"event before the return", []Event{{Time: at(12), Domain: "d", Event: "suspended"}}, at(12)},
		{"event after the return", []Event{{Time: at(31), Domain: "d", Event: "suspended"}}, returned},
		{"event from before the call", []Event{{Time: at(-5), Domain: "d", Event: "suspended"}}, returned},
		{"another domain's", []Event{{Time: at(12), Domain: "other", Event: "suspended"}}, returned},
		{"another event", []Event{{Time: at(12), Domain: "d", Event: "resumed"}}, returned},
		{"first of several", []Event{{Time: at(8), Domain: "other", Event: "suspended"}, {Time: at(12), Domain: "d", Event: "suspended"}, {Time: at(20), Domain: "d", Event: "suspended"}}, at(12)},
	}
	for _, c := range cases {
		if got := firstSuspended(c.evs, "d", start, returned); !got.Equal(c.want) {
			t.Errorf("%s: firstSuspended = %v, want %v", c.name, got.Sub(t0), c.want.Sub(t0))
		}
	}
}

func TestDrainDoesNotBlock(t *testing.T) {
	if got := drain(nil); got != nil {
		t.Fatalf("drain(nil) = %v", got)
	}
	ch := make(chan Event, 3)
	ch <- Event{Event: "a"}
	ch <- Event{Event: "b"}
	if got := drain(ch); len(got) != 2 || got[1].Event != "b" {
		t.Fatalf("drain = %+v, want the two waiting events", got)
	}
	close(ch)
	if got := drain(ch); got != nil {
		t.Fatalf("drain of a closed channel = %+v", got)
	}
}
