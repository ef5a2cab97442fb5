package model

import (
	"slices"
	"testing"
	"time"
)

func TestConnectTimeout(t *testing.T) {
	s := time.Second
	tests := []struct {
		retries, linear int
		want            time.Duration
	}{
		{6, 0, 127 * s}, // 1+2+4+8+16+32+64
		{6, 4, 131 * s}, // 1+1+1+1+1 + 2+4+8+16+32+64 (kernel >= 6.5)
		{0, 0, 1 * s},
		{3, 0, 15 * s}, // 1+2+4+8
		// Intervals 1,2,4,8,16,32,64, then 128 s capped to 120 s twice:
		// 127 + 120 + 120 = 367 s.
		{8, 0, 367 * s},
		// The time bound tcp_model_timeout(2, 1 s) = 7 s ends it at the
		// expiry at 7 s, one retransmission short of the count 2+4.
		{2, 4, 7 * s},
		{1, 4, 3 * s},
		{3, 4, 19 * s}, // 1,2,3,4,5,7,11 then 19: the count (7) ends it first.
	}
	for _, tt := range tests {
		if got := ConnectTimeout(tt.retries, tt.linear); got != tt.want {
			t.Errorf("ConnectTimeout(%d, %d) = %v, want %v", tt.retries, tt.linear, got, tt.want)
		}
	}
}

func TestConnectSchedule(t *testing.T) {
	s := time.Second
	got, fail := ConnectSchedule(6, 4)
	// Kernel documentation: last retransmission at 67 s, failure at 131 s.
	want := []time.Duration{1 * s, 2 * s, 3 * s, 4 * s, 5 * s, 7 * s, 11 * s, 19 * s, 35 * s, 67 * s}
	if !slices.Equal(got, want) || fail != 131*s {
		t.Errorf("ConnectSchedule(6, 4) = %v, %v; want %v, 131s", got, fail, want)
	}
}

func TestPlanConnect(t *testing.T) {
	s := time.Second
	p, err := PlanConnect(SynInput{Retries: 2, Linear: 4})
	if err != nil {
		t.Fatal(err)
	}
	if p.By != "time" || p.Retransmits() != 5 || p.Abort != 7*s || p.Bound != 7*s || p.MaxRetransmits != 6 {
		t.Errorf("2 retries, 4 linear: %+v; want 5 retransmissions, time bound 7 s", p)
	}
	if !slices.Equal(p.Armed, []time.Duration{s, s, s, s, s, 2 * s}) {
		t.Errorf("armed %v, want five linear 1 s timers, then 2 s", p.Armed)
	}
	p, _ = PlanConnect(SynInput{Retries: 2})
	if p.By != "count" || p.Retransmits() != 2 || p.Abort != 7*s || !slices.Equal(p.Sends, []time.Duration{0, s, 3 * s}) {
		t.Errorf("2 retries on 6.1: %+v; want SYNs at 0, 1, 3 s and the count ending it at 7 s", p)
	}
	// TCP_USER_TIMEOUT replaces the bound and clamps the timer.
	p, _ = PlanConnect(SynInput{Retries: 6, UserTimeout: 5 * s})
	if p.By != "time" || p.Abort != 5*s || p.Armed[len(p.Armed)-1] != 2*s {
		t.Errorf("user timeout 5 s: %+v; want the clamped timer ending it at 5 s", p)
	}
	if _, err := PlanConnect(SynInput{Retries: -1}); err == nil {
		t.Error("negative retries: want an error")
	}
	if SynBound(6) != 127*s || SynBound(8) != 367*s {
		t.Errorf("SynBound(6), (8) = %v, %v", SynBound(6), SynBound(8))
	}
}

func TestNeighResolveFail(t *testing.T) {
	if got := LinuxNeigh().ResolveFail(); got != 3*time.Second {
		t.Errorf("default resolution gives up after %v, want 3 s", got)
	}
	n := Neigh{McastSolicit: 2, AppSolicit: 1, RetransTime: 500 * time.Millisecond}
	if got := n.ResolveFail(); got != 1500*time.Millisecond || n.Requests() != 2 {
		t.Errorf("%+v: FAILED after %v with %d requests, want 1.5 s, 2", n, got, n.Requests())
	}
	if got := (Neigh{McastSolicit: 3, RetransTime: time.Millisecond}).Interval(); got != 10*time.Millisecond {
		t.Errorf("interval %v, want the HZ/100 floor", got)
	}
}
