package scenario

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab/model"
)

const ms = time.Millisecond

// ladderAt builds a ladder whose first RTO retransmission is at rs, with
// rungs at the given offsets from rs and the RTO doubling from base.
func ladderAt(rs time.Time, base time.Duration, offsets ...time.Duration) *Ladder {
	l := &Ladder{Sent: rs.Add(-2 * base), Probes: []time.Time{rs.Add(-base)}, Base: base}
	rto := base
	for _, o := range offsets {
		rto *= 2
		l.Rungs = append(l.Rungs, Rung{At: rs.Add(o), Armed: rto, ArmedFrom: "tcp_info"})
	}
	return l
}

func TestKernelAbortFromTheLastRung(t *testing.T) {
	rs := time.Unix(1795614000, 0)
	// tcp_retries2=3: bound 3.0 s. RTO 208 ms doubles: rungs at 0, 0.416,
	// 1.248, 2.912 s; the timer armed at 2.912 s (3.328 s) expires at
	// 6.240 s, the first expiry past the bound.
	l := ladderAt(rs, 208*ms, 0, 416*ms, 1248*ms, 2912*ms)
	l.Late = []time.Duration{5 * ms, 30 * ms, 12 * ms}
	s, err := kernelAbort(AbortCase{Ladder: l, Retries2: 3, HZ: 250})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Nominal.Sub(rs); got != 6240*ms {
		t.Errorf("nominal abort %v after retrans_stamp, want 6.24s", got)
	}
	if s.Lo != s.Nominal {
		t.Errorf("earliest %v, want the nominal expiry (timers never fire early)", s.Lo.Sub(rs))
	}
	// Granule of a 3.328 s timer at HZ=250: 256 ms; plus 30 ms measured.
	if got := s.Hi.Sub(s.Nominal); got != 286*ms {
		t.Errorf("latest %v after nominal, want 286ms", got)
	}
	// Count-based: after 3 RTO retransmissions the expiry of the timer
	// armed at the third: 1.248 + 1.664 = 2.912 s, before the bound.
	c, err := countAbort(AbortCase{Ladder: l, Retries2: 3, HZ: 250})
	if err != nil || c.Nominal.Sub(rs) != 2912*ms {
		t.Errorf("count abort %v, %v; want 2.912s", c.Nominal.Sub(rs), err)
	}
	// Exactly at the bound.
	b, _ := WrongAbortAtBound.Abort(AbortCase{Ladder: l, Retries2: 3})
	if b.Nominal.Sub(rs) != 3*time.Second {
		t.Errorf("at-bound abort %v, want 3s", b.Nominal.Sub(rs))
	}
}

func TestKernelAbortRules(t *testing.T) {
	rs := time.Unix(1795614000, 0)
	t.Run("retransmission past the bound contradicts", func(t *testing.T) {
		l := ladderAt(rs, 208*ms, 0, 416*ms, 1248*ms, 3100*ms)
		_, err := kernelAbort(AbortCase{Ladder: l, Retries2: 3})
		if !errors.Is(err, errContradicted) {
			t.Fatalf("err = %v, want contradiction", err)
		}
	})
	t.Run("reverts open the window at the bound", func(t *testing.T) {
		l := ladderAt(rs, 208*ms, 0, 416*ms, 1248*ms, 2912*ms)
		l.Reverts = 2
		s, err := kernelAbort(AbortCase{Ladder: l, Retries2: 3})
		if err != nil || s.Lo.Sub(rs) != 3*time.Second {
			t.Fatalf("earliest %v (%v), want the bound 3s", s.Lo.Sub(rs), err)
		}
	})
	t.Run("user timeout clamps the last timer", func(t *testing.T) {
		l := ladderAt(rs, 208*ms, 0, 416*ms, 1248*ms, 2912*ms)
		s, err := kernelAbort(AbortCase{Ladder: l, UserTimeout: 6 * time.Second, Retries2: 15})
		if err != nil || s.Nominal.Sub(rs) != 6*time.Second {
			t.Fatalf("abort %v (%v), want 6s", s.Nominal.Sub(rs), err)
		}
		// Counted from the original send (416 ms earlier), the clamp moves
		// the abort 416 ms earlier too.
		w, err := WrongBoundFromSend.Abort(AbortCase{Ladder: l, UserTimeout: 6 * time.Second, Retries2: 15})
		if err != nil || w.Nominal.Sub(rs) != 6*time.Second-416*ms {
			t.Fatalf("from-send abort %v (%v), want 5.584s", w.Nominal.Sub(rs), err)
		}
	})
	t.Run("a missing last rung moves the abort along the ladder", func(t *testing.T) {
		// The capture ends at the rung at 1.248 s: its timer (1.664 s)
		// expires at 2.912 s, before the bound, so the kernel retransmits
		// once more — unless that timer fires late past the bound.
		l := ladderAt(rs, 208*ms, 0, 416*ms, 1248*ms)
		l.Late = []time.Duration{100 * ms}
		s, err := kernelAbort(AbortCase{Ladder: l, Retries2: 3, HZ: 250})
		if err != nil {
			t.Fatal(err)
		}
		if s.Lo.Sub(rs) != 3*time.Second || s.Nominal.Sub(rs) != 6240*ms {
			t.Errorf("window from %v nominal %v; want from the bound, nominal 6.24s", s.Lo.Sub(rs), s.Nominal.Sub(rs))
		}
	})
	t.Run("thin streams keep the RTO linear", func(t *testing.T) {
		if got := model.NextRTO(208*ms, 208*ms, model.RTOMax, 6, true); got != 208*ms {
			t.Errorf("6th thin RTO %v, want linear 208ms", got)
		}
		if got := model.NextRTO(208*ms, 208*ms, model.RTOMax, 7, true); got != 416*ms {
			t.Errorf("7th thin RTO %v, want doubled 416ms", got)
		}
	})
}

func TestKeepaliveRules(t *testing.T) {
	lr := time.Unix(1795614000, 0)
	k := model.Keepalive{Enabled: true, Idle: 3 * time.Second, Intvl: time.Second, Probes: 3}
	c := KeepaliveCase{LastRecv: lr, Keepalive: k, HZ: 250,
		Probes: []time.Time{lr.Add(3010 * ms), lr.Add(4050 * ms), lr.Add(5060 * ms)}}
	s, err := kernelKeepalive(c)
	if err != nil {
		t.Fatal(err)
	}
	if s.Nominal.Sub(lr) != 6060*ms {
		t.Errorf("abort %v after the last receive, want 6.06s (one interval after the third probe)", s.Nominal.Sub(lr))
	}
	// Granule of 1 s at HZ=250: 32 ms; largest measured lateness 40 ms.
	if s.Hi.Sub(s.Nominal) != 72*ms {
		t.Errorf("allowance %v, want 72ms", s.Hi.Sub(s.Nominal))
	}
	w, _ := WrongKeepaliveCount.Keepalive(c)
	if w.Nominal != c.Probes[2] {
		t.Errorf("wrong model aborts at %v, want the last probe", w.Nominal.Sub(lr))
	}
	if _, err := kernelKeepalive(KeepaliveCase{Keepalive: k}); err == nil {
		t.Error("no probes: want an error")
	}
}

func TestResetRules(t *testing.T) {
	up := time.Unix(1795614000, 0)
	c := ResetCase{Up: up, UpUncert: 2 * ms,
		Retrans: []time.Time{up.Add(-1200 * ms), up.Add(1500 * ms), up.Add(4800 * ms)}, RST: up.Add(1512 * ms)}
	s, err := kernelReset(c)
	if err != nil {
		t.Fatal(err)
	}
	if s.Lo != up.Add(1500*ms) || s.Hi != up.Add(1512*ms) {
		t.Errorf("window %v..%v after up, want 1.5..1.512s", s.Lo.Sub(up), s.Hi.Sub(up))
	}
	w, _ := WrongImmediateRST.Reset(c)
	if w.Lo != up || w.Hi != up.Add(12*ms) {
		t.Errorf("immediate model %v..%v, want 0..12ms", w.Lo.Sub(up), w.Hi.Sub(up))
	}
	c.RST = time.Time{}
	if _, err := kernelReset(c); err == nil || !strings.Contains(err.Error(), "no RST") {
		t.Errorf("no RST on the wire: %v", err)
	}
	c.Retrans = c.Retrans[:1]
	if _, err := kernelReset(c); err == nil {
		t.Error("no retransmission after up: want an error")
	}
}

func TestCountCheck(t *testing.T) {
	rs := time.Unix(1795614000, 0)
	l := ladderAt(rs, 208*ms, 0, 416*ms, 1248*ms, 2912*ms)
	if r := countCheck(AbortCase{Ladder: l, Retries2: 3, HZ: 250}); r.Verdict != model.Expected {
		t.Errorf("4 rungs for tcp_retries2=3: %v %s", r.Verdict, r.Why)
	}
	if r := countCheck(AbortCase{Ladder: l, Retries2: 5, HZ: 250}); r.Verdict != model.Unexpected {
		t.Errorf("4 rungs for tcp_retries2=5: %v %s", r.Verdict, r.Why)
	}
	l.Reverts = 3
	if r := countCheck(AbortCase{Ladder: ladderAt(rs, 208*ms, 0, 1, 2, 3, 4, 5, 6, 7), Retries2: 3, HZ: 250}); r.Verdict != model.Unexpected {
		t.Errorf("8 rungs, no reverts: %v %s", r.Verdict, r.Why)
	}
	many := ladderAt(rs, 208*ms, 0, 1, 2, 3, 4, 5, 6, 7)
	many.Reverts = 3
	if r := countCheck(AbortCase{Ladder: many, Retries2: 3, HZ: 250}); r.Verdict != model.Expected || !strings.Contains(r.Why, "reverts") {
		t.Errorf("8 rungs with reverts: %v %s", r.Verdict, r.Why)
	}
}

func TestFinDetect(t *testing.T) {
	f := time.Unix(1795614000, 0)
	ev := &Evidence{FaultStart: f, FaultEnd: f.Add(20 * ms), FaultAt: f.Add(10 * ms), FaultUncert: 10 * ms, Client: []GuestEvent{
		{Event: echo.Event{Ev: "write", Seq: 1}, At: f.Add(-2000 * ms)},
		{Event: echo.Event{Ev: "read", Seq: 1}, At: f.Add(-1992 * ms)},
		{Event: echo.Event{Ev: "write", Seq: 2}, At: f.Add(-1000 * ms)},
		{Event: echo.Event{Ev: "read", Seq: 2}, At: f.Add(-995 * ms)},
		{Event: echo.Event{Ev: "write", Seq: 3}, At: f.Add(900 * ms)},
	}}
	ev.Wire = &Wire{Segments: []Segment{
		{At: f.Add(-1999 * ms), Out: true, Seq: 500, Len: 7, Flags: tcpACK},
		{At: f.Add(-1996 * ms), Seq: 1, Len: 7, Flags: tcpACK},
		{At: f.Add(-999 * ms), Out: true, Seq: 507, Len: 7, Flags: tcpACK},
		{At: f.Add(-998 * ms), Seq: 8, Len: 7, Flags: tcpACK},
	}}
	fin := f.Add(15 * ms)
	s, _, errs, _, err := finDetect(ev, fin)
	if err != nil {
		t.Fatal(err)
	}
	if s.Lo != f.Add(900*ms) || s.Hi != f.Add(908*ms) || len(errs) != 2 {
		t.Errorf("blocking: %v..%v %v, want the next write + 8 ms turnaround, EOF or ECONNRESET", s.Lo.Sub(f), s.Hi.Sub(f), errs)
	}
	// A line written before the FIN and not yet echoed: str_cli is blocked
	// in its read, and learns as the FIN arrives.
	blocked := *ev
	blocked.Wire = &Wire{Segments: append(append([]Segment(nil), ev.Wire.Segments...), Segment{At: f.Add(5 * ms), Out: true, Seq: 514, Len: 7, Flags: tcpACK})}
	s, k, errs, _, _ := finDetect(&blocked, fin)
	if s.Lo != fin || s.Hi != fin || k.Lo != fin || len(errs) != 1 || errs[0] != model.EOF {
		t.Errorf("blocked in read: %v..%v %v", s.Lo.Sub(f), s.Hi.Sub(f), errs)
	}
	ev.Opt.Read = "event"
	s, _, errs, _, _ = finDetect(ev, fin)
	if s.Lo != fin || s.Hi != fin || errs[0] != model.EOF {
		t.Errorf("event: %v..%v %v", s.Lo.Sub(f), s.Hi.Sub(f), errs)
	}
	if r := finCheck(fin, killFINSpan(ev), f); r.Verdict != model.Expected {
		t.Errorf("FIN 15 ms into a 20 ms kill: %v %s", r.Verdict, r.Why)
	}
	if r := finCheck(f.Add(900*ms), killFINSpan(ev), f); r.Verdict != model.Unexpected {
		t.Errorf("FIN long after the kill: %v %s", r.Verdict, r.Why)
	}
}

// TestJudgeUnknowns: hostlab's own stop and a missing prediction are
// unknown, never findings.
func TestJudgeUnknowns(t *testing.T) {
	f := time.Unix(1795614000, 0)
	s, _ := Lookup("power-off")
	ev := &Evidence{Scenario: "power-off", FaultStart: f, FaultEnd: f.Add(10 * ms), Stopped: f.Add(time.Second),
		Exit: &Exit{Signal: "KILL", ByHostlab: true, At: f.Add(1100 * ms)}}
	d := Judge(s, ev, Kernel)
	if d.Verdict != model.Unknown || d.Observation.Error != "" {
		t.Errorf("hostlab's stop: %v %q (%s), want unknown with nothing observed", d.Verdict, d.Observation.Error, d.Why)
	}
	ev = &Evidence{Scenario: "power-off", FaultStart: f, FaultEnd: f.Add(10 * ms),
		Client: []GuestEvent{{Event: echo.Event{Ev: "error", Errno: "ECONNRESET"}, At: f.Add(5 * time.Second)}}}
	d = Judge(s, ev, Kernel)
	if d.Verdict != model.Unknown || !strings.Contains(d.Why, "no prediction") {
		t.Errorf("no model inputs: %v %s, want unknown", d.Verdict, d.Why)
	}
	d = Judge(s, &Evidence{Scenario: "power-off"}, Kernel)
	if d.Verdict != model.Unknown {
		t.Errorf("no fault: %v", d.Verdict)
	}
}

func TestUnreachableErrors(t *testing.T) {
	f := time.Unix(1795614000, 0)
	ev := &Evidence{FaultStart: f, FaultAt: f, Wire: &Wire{}, Client: []GuestEvent{
		{Event: echo.Event{Ev: "error", Errno: "EHOSTUNREACH"}, At: f.Add(17 * time.Second)}}}
	if errs, why := unreachableErrors(ev); len(errs) != 1 || errs[0] != model.ETIMEDOUT {
		t.Errorf("no ICMP before the abort: %v (%s), want ETIMEDOUT", errs, why)
	}
	ev.ICMP = []icmpEvent{
		{At: f.Add(-time.Second), Code: icmpHostUnreach}, // Before the fault: not counted.
		{At: f.Add(6630 * ms), Code: icmpHostUnreach},
		{At: f.Add(9 * time.Second), Code: icmpNetUnreach},
		{At: f.Add(20 * time.Second), Code: icmpHostUnreach}, // After the client learnt.
	}
	errs, why := unreachableErrors(ev)
	if len(errs) != 1 || errs[0] != model.EHOSTUNREACH || !strings.Contains(why, "sent 1 ICMP") || !strings.Contains(why, "6.630 s") {
		t.Errorf("one ICMP host unreachable: %v (%s)", errs, why)
	}
	if n := icmpBefore(ev); n != 1 {
		t.Errorf("icmpBefore = %d, want 1", n)
	}
	ev.Wire = nil
	if errs, _ := unreachableErrors(ev); len(errs) != 2 {
		t.Errorf("no capture: %v, want both errors allowed", errs)
	}
}

func TestAnalyseWire(t *testing.T) {
	f := time.Unix(1795614000, 0)
	at := func(d time.Duration) time.Time { return f.Add(d) }
	segs := []Segment{
		{At: at(-2 * time.Second), Out: true, Seq: 100, Len: 7, Flags: tcpACK},
		{At: at(-1990 * ms), Seq: 500, Ack: 107, Len: 7, Flags: tcpACK},
		{At: at(1000 * ms), Out: true, Seq: 107, Len: 7, Flags: tcpACK}, // Sent, never acknowledged.
		{At: at(1220 * ms), Out: true, Seq: 107, Len: 7, Flags: tcpACK}, // Tail-loss probe.
		{At: at(1430 * ms), Out: true, Seq: 107, Len: 7, Flags: tcpACK},
		{At: at(1850 * ms), Out: true, Seq: 107, Len: 7, Flags: tcpACK},
		{At: at(2 * time.Second), Seq: 507, Ack: 107, Flags: tcpRST},
	}
	w := analyseWire(segs, f)
	if !w.Sent.Equal(at(time.Second)) || len(w.Retrans) != 3 || !w.RST.Equal(at(2*time.Second)) || !w.LastFromServer.Equal(at(-1990*ms)) {
		t.Errorf("wire = sent %v, %d retransmissions, RST %v, last from server %v", w.Sent.Sub(f), len(w.Retrans), w.RST.Sub(f), w.LastFromServer.Sub(f))
	}
	// An idle connection's keepalive probes: seq = snd_una - 1, no data.
	idle := []Segment{
		{At: at(-3 * time.Second), Seq: 500, Ack: 100, Flags: tcpACK},
		{At: at(3 * time.Second), Out: true, Seq: 99, Ack: 501, Flags: tcpACK},
		{At: at(4 * time.Second), Out: true, Seq: 99, Ack: 501, Flags: tcpACK},
	}
	if w := analyseWire(idle, f); len(w.Probes) != 2 || len(w.Retrans) != 0 {
		t.Errorf("idle: %d probes, %d retransmissions; want 2, 0", len(w.Probes), len(w.Retrans))
	}
}

// TestKeepaliveReadBack: the model uses the keepalive the socket holds, not
// the one asked for: the kernel takes whole seconds.
func TestKeepaliveReadBack(t *testing.T) {
	f := time.Unix(1795614000, 0)
	ev := &Evidence{FaultStart: f, FaultAt: f, Opt: Options{Idle: true, Keepalive: "1500ms,1s,2"},
		Sysctls: map[string]map[string]string{"client": {"net.ipv4.tcp_retries2": "15"}},
		Client:  []GuestEvent{{Event: echo.Event{Ev: "connect", Sockopts: &echo.Sockopts{Keepalive: true, KeepIdleS: 2, KeepIntvlS: 1, KeepCnt: 2}}, At: f.Add(-time.Second)}},
		Wire:    &Wire{LastFromServer: f.Add(-time.Second), Probes: []time.Time{f.Add(time.Second), f.Add(2 * time.Second)}}}
	j := deadPeerExpect(ev, Kernel)
	if j.Exp.Window == nil || j.Exp.Window.Nominal != 3*time.Second || !strings.Contains(j.Exp.Reason, "the socket holds 2.000 s") {
		t.Fatalf("expectation %+v", j.Exp)
	}
}

func TestEchoedLines(t *testing.T) {
	w := func(n int) echo.Event { return echo.Event{Ev: "write", Bytes: n} }
	r := func(n int) echo.Event { return echo.Event{Ev: "read", Bytes: n} }
	// --twice: 1 byte, then 14; the server echoes the first part alone.
	evs := []echo.Event{w(1), r(1), w(14), r(14), w(1), w(14), r(15)}
	if got := echoedLines(evs, 2); got != 2 {
		t.Errorf("twice: %d lines, want 2 (a partial echo is not a line)", got)
	}
	if got := echoedLines(evs[:2], 2); got != 0 {
		t.Errorf("first part echoed alone: %d lines, want 0", got)
	}
	if got := echoedLines([]echo.Event{w(15), r(15), w(15), r(15)}, 1); got != 2 {
		t.Errorf("one write a line: %d, want 2", got)
	}
}
