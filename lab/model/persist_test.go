package model

import (
	"testing"
	"time"
)

const msP = time.Millisecond

func TestPlanPersistUserTimeout(t *testing.T) {
	// RTO 204 ms, peer answers at most every 500 ms after 2 ms: probe 2
	// (410 ms after probe 1) goes unanswered, its timer runs from the probe.
	p, err := PlanPersist(PersistInput{Base: 204 * msP, UserTimeout: 5 * time.Second, Retries2: 15,
		RateLimit: DefaultInvalidRatelimit, RTT: 2 * msP, Horizon: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if p.By != "user_timeout" || p.Abort != 5*time.Second {
		t.Fatalf("abort %v by %q, want 5 s by the user timeout", p.Abort, p.By)
	}
	at := []time.Duration{0, 410 * msP, 1226 * msP, 2860 * msP}
	ans := []bool{true, false, true, true}
	if len(p.Probes) != len(at) {
		t.Fatalf("probes %+v, want %d", p.Probes, len(at))
	}
	for i, pr := range p.Probes {
		if pr.At != at[i] || pr.Answered != ans[i] {
			t.Errorf("probe %d at %v answered %v, want %v %v", i+1, pr.At, pr.Answered, at[i], ans[i])
		}
	}
	// The last timer is clamped to fire at the user timeout.
	if last := p.Probes[3]; last.At+2*msP+last.When != 5*time.Second {
		t.Errorf("last timer %v from the answer, want clamped to 5 s", last.When)
	}
	if p.MaxUnanswered != 1 {
		t.Errorf("max unanswered %d, want 1", p.MaxUnanswered)
	}
}

func TestPlanPersistNeverWithoutUserTimeout(t *testing.T) {
	p, err := PlanPersist(PersistInput{Base: 204 * msP, Retries2: 3, RateLimit: DefaultInvalidRatelimit, RTT: 2 * msP, Horizon: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Never || p.Abort != 0 {
		t.Errorf("no user timeout: %+v, want never", p)
	}
	// With tcp_retries2=1 the one unanswered probe is enough to end it.
	p, _ = PlanPersist(PersistInput{Base: 204 * msP, Retries2: 1, RateLimit: DefaultInvalidRatelimit, RTT: 2 * msP, Horizon: time.Minute})
	if p.Never || p.By != "retries2" {
		t.Errorf("tcp_retries2=1: %+v, want the unanswered probe to end it", p)
	}
	if _, err := PlanPersist(PersistInput{Retries2: 3, Horizon: time.Minute}); err == nil {
		t.Error("no base: want an error")
	}
}

func TestProbeWhen(t *testing.T) {
	if got := ProbeWhen(200*msP, 3); got != 1600*msP {
		t.Errorf("ProbeWhen(200ms, 3) = %v", got)
	}
	if got := ProbeWhen(200*msP, 15); got != RTOMax {
		t.Errorf("ProbeWhen(200ms, 15) = %v, want capped at %v", got, RTOMax)
	}
	if got := ProbeWhen(100*msP, 12); got != 100*msP<<ProbeBackoffCap {
		t.Errorf("ProbeWhen(100ms, 12) = %v, want the shift capped at 10", got)
	}
}
