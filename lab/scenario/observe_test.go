package scenario

import (
	"testing"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/timeline"
)

// sameClock is a clock fit for a "guest" whose CLOCK_MONOTONIC reads the
// host's Unix nanoseconds, from exchanges 100 µs long.
func sameClock(t *testing.T, at time.Time) timeline.Clock {
	t.Helper()
	var samples []timeline.ClockSample
	for i := 0; i < 5; i++ {
		send := at.Add(time.Duration(i) * time.Second)
		mid := send.Add(50 * time.Microsecond)
		samples = append(samples, timeline.ClockSample{HostSend: send, HostRecv: send.Add(100 * time.Microsecond),
			GuestReal: mid.UnixNano(), GuestMono: mid.UnixNano()})
	}
	clk, err := timeline.EstimateClock(samples)
	if err != nil {
		t.Fatal(err)
	}
	return clk
}

func tcpEv(at time.Time, retrans, total, backoff uint8, rto uint32) echo.Event {
	return echo.Event{Ev: "tcp_info", MonoNS: at.UnixNano(), TCPInfo: &echo.TCPInfo{
		State: "ESTABLISHED", Retransmits: retrans, TotalRetrans: uint32(total), Backoff: backoff, RTOus: rto}}
}

func TestObservationAndLadder(t *testing.T) {
	t0 := time.Unix(1795614000, 0)
	fault := t0.Add(10 * time.Second)
	r := &Run{clock: map[string]timeline.Clock{lab.RoleClient: sameClock(t, t0)}, faultStart: fault,
		faultEnd: fault.Add(20 * time.Millisecond)}
	r.client = &proc{notify: make(chan struct{}, 1), events: []echo.Event{
		{Ev: "error", Errno: "ECONNRESET", MonoNS: t0.Add(2 * time.Second).UnixNano()}, // Before the fault: not its.
		tcpEv(t0.Add(9*time.Second), 0, 0, 0, 204000),
		{Ev: "read", MonoNS: t0.Add(9500 * time.Millisecond).UnixNano()},
		tcpEv(fault.Add(200*time.Millisecond), 0, 1, 0, 204000), // Tail-loss probe.
		tcpEv(fault.Add(400*time.Millisecond), 1, 2, 1, 408000),
		tcpEv(fault.Add(500*time.Millisecond), 1, 2, 1, 408000), // No change: folded.
		tcpEv(fault.Add(800*time.Millisecond), 2, 3, 2, 816000),
		{Ev: "error", Errno: "ETIMEDOUT", MonoNS: fault.Add(14 * time.Second).UnixNano()},
	}}
	ob := r.evidence().observation()
	if ob.Error != "ETIMEDOUT" || ob.Event != "error" {
		t.Fatalf("observation = %+v, want the ETIMEDOUT after the fault", ob)
	}
	if d := ob.At.Sub(fault); d < 14*time.Second-time.Millisecond || d > 14*time.Second+time.Millisecond {
		t.Fatalf("detected %v after the fault, want 14 s", d)
	}
	steps, retrans := r.ladder()
	if retrans != 3 {
		t.Errorf("retransmissions after the fault = %d, want 3", retrans)
	}
	if len(steps) != 3 || steps[1].Backoff != 1 || steps[2].RTOms != 816 {
		t.Errorf("ladder = %+v, want 3 distinct rungs", steps)
	}
}

func TestObservationEOFAndTimeout(t *testing.T) {
	t0 := time.Unix(1795614000, 0)
	r := &Run{clock: map[string]timeline.Clock{lab.RoleClient: sameClock(t, t0)}, faultStart: t0}
	r.client = &proc{events: []echo.Event{{Ev: "eof", MonoNS: t0.Add(time.Second).UnixNano()}}}
	if ob := r.evidence().observation(); ob.Error != "EOF" {
		t.Errorf("eof event → %q, want EOF", ob.Error)
	}
	r.client = &proc{events: []echo.Event{{Ev: "read_timeout", Errno: "timeout", MonoNS: t0.Add(time.Second).UnixNano()}}}
	if ob := r.evidence().observation(); ob.Error != "timeout" {
		t.Errorf("read_timeout event → %q, want timeout", ob.Error)
	}
	r.client = &proc{}
	if ob := r.evidence().observation(); ob.Error != "" {
		t.Errorf("no events → %q, want nothing", ob.Error)
	}
}

func TestBackoffReverts(t *testing.T) {
	t0 := time.Unix(1795614000, 0)
	r := &Run{clock: map[string]timeline.Clock{lab.RoleClient: sameClock(t, t0)}, faultStart: t0}
	ev := func(s int, backoff uint8, unacked uint32) echo.Event {
		e := tcpEv(t0.Add(time.Duration(s)*time.Second), backoff, backoff, backoff, 200000<<backoff)
		e.TCPInfo.Unacked = unacked
		return e
	}
	r.client = &proc{events: []echo.Event{ev(1, 1, 1), ev(2, 2, 1), ev(5, 3, 1), ev(9, 2, 1), ev(12, 3, 1), ev(20, 2, 1), ev(21, 0, 0)}}
	if n := backoffReverts(r.evidence()); n != 2 {
		t.Fatalf("backoffReverts = %d, want 2 (a drop to 0 with nothing unacknowledged is not a revert)", n)
	}
}
