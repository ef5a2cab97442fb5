package scenario

import (
	"errors"
	"fmt"
	"time"

	"github.com/hostlab/hostlab/lab/model"
)

// Span is a detection window on the host's clock.
type Span struct {
	// Lo and Hi bound the detection; Nominal is it with every timer on time
	// (zero when only a bound is known).
	Lo, Hi, Nominal time.Time
	// Slack is the anchors' own uncertainty, allowed on both sides.
	Slack time.Duration
	// Bound is true when the window is a bound, not a prediction.
	Bound bool
	// Basis says what the window is derived from.
	Basis string
}

// window expresses the span in time since the fault.
func (s Span) window(fault time.Time) *model.Window {
	w := &model.Window{Earliest: s.Lo.Sub(fault), Latest: s.Hi.Sub(fault), Slack: s.Slack, Bound: s.Bound, Basis: s.Basis}
	if !s.Nominal.IsZero() {
		w.Nominal = s.Nominal.Sub(fault)
	}
	return w
}

// errContradicted marks evidence the rule itself rules out (e.g. a
// retransmission past the bound, where the kernel would have aborted).
var errContradicted = errors.New("contradicted by the evidence")

// AbortCase is a connection with unacknowledged data to a silent peer, as
// a run measured it.
type AbortCase struct {
	// Ladder is the measured retransmission ladder.
	Ladder *Ladder
	// Retries2 is the client's tcp_retries2; UserTimeout its
	// TCP_USER_TIMEOUT (0: unset), read back from the socket.
	Retries2    int
	UserTimeout time.Duration
	// Thin says linear timeouts apply (tcp_thin_linear_timeouts on a thin
	// stream).
	Thin bool
	// HZ is the client kernel's tick rate.
	HZ int
}

// KeepaliveCase is an idle connection to a silent peer probed by keepalive.
type KeepaliveCase struct {
	// LastRecv is the last segment from the peer (the client's capture).
	LastRecv time.Time
	// Probes are the keepalive probes on the wire after the fault.
	Probes []time.Time
	// Keepalive is the socket's configuration read back with getsockopt.
	Keepalive model.Keepalive
	// UserTimeout is TCP_USER_TIMEOUT read back (0: unset).
	UserTimeout time.Duration
	// HZ is the client kernel's tick rate.
	HZ int
}

// ResetCase is a client retransmitting to a host that rebooted.
type ResetCase struct {
	// Up is when the rebooted server's lab link came up (its init's console,
	// on the host axis through a clock fit taken after the reboot), ±UpUncert.
	Up       time.Time
	UpUncert time.Duration
	// Retrans are the client's retransmissions on the wire after the fault.
	Retrans []time.Time
	// RST is the first RST from the server on the client's wire.
	RST time.Time
}

// Rules are the kernel rules a verdict applies to the evidence. Kernel is
// Linux's; tests substitute wrong rules to prove that verdicts can fail.
type Rules struct {
	// Name names the rule set.
	Name string
	// Abort predicts the abort of a connection with unacknowledged data.
	Abort func(AbortCase) (Span, error)
	// Keepalive predicts the keepalive abort of an idle connection.
	Keepalive func(KeepaliveCase) (Span, error)
	// Reset predicts when a rebooted host's RST reaches the client.
	Reset func(ResetCase) (Span, error)
	// Heal predicts whether a connection survives a cut link that heals,
	// and when its queued data crosses (partition.go); nil: the kernel's.
	Heal func(HealCase) (HealOutcome, error)
	// Syn predicts how a connect to a dead or closed peer ends
	// (connect-dead); nil means Kernel's.
	Syn func(SynCase) (SynOutcome, error)
	// Persist predicts how a sender probing a closed window ends
	// (hang-server); nil means Kernel's.
	Persist func(PersistCase) (PersistOutcome, error)
}

// Kernel are the rules of the Linux kernel (net/ipv4/tcp_timer.c).
var Kernel = Rules{Name: "linux", Abort: kernelAbort, Keepalive: kernelKeepalive, Reset: kernelReset, Heal: kernelHeal,
	Syn: kernelSyn, Persist: kernelPersist}

// kernelAbort is tcp_write_timeout: the connection is aborted at the first
// retransmit timer expiry at or past retrans_stamp + the bound
// (tcp_model_timeout for tcp_retries2, or TCP_USER_TIMEOUT, to which the
// timer is clamped), never before. From the last retransmission on the wire
// the window runs forward along the ladder; each timer may fire late by its
// wheel granule plus the largest lateness measured in this run. ICMP
// backoff reverts re-arm timers shorter, so with reverts the abort can come
// at any expiry from the bound on.
func kernelAbort(c AbortCase) (Span, error) {
	return abortFrom(c, c.Ladder.RetransStamp(), "retrans_stamp (the first RTO retransmission on the wire)")
}

// abortFrom runs the kernel's abort rule with the bound counted from origin.
func abortFrom(c AbortCase, origin time.Time, what string) (Span, error) {
	l := c.Ladder
	bound, from := boundOf(c)
	deadline := origin.Add(bound)
	for _, r := range l.Rungs[1:] {
		if !r.At.Before(deadline) {
			return Span{}, fmt.Errorf("a retransmission at %s is at or past the bound (%s from %s), where the kernel aborts instead: %w",
				r.At.Format("15:04:05.000"), fmtSecs(bound), what, errContradicted)
		}
	}
	allow := func(d time.Duration) time.Duration { return model.TimerSlack(d, c.HZ) + l.MaxLate() }
	last := l.Last()
	n := len(l.Rungs)
	lo, hi, rto := last.At, last.At, last.Armed
	var earliest time.Time
	for range 10000 {
		lenLo := timerLength(lo.Sub(origin), rto, clampUT(c))
		lenHi := timerLength(hi.Sub(origin), rto, clampUT(c))
		eLo, eHi := lo.Add(lenLo), hi.Add(lenHi+allow(lenHi))
		if !eHi.Before(deadline) && earliest.IsZero() {
			earliest = later(deadline, eLo)
		}
		if !eLo.Before(deadline) {
			if l.Reverts > 0 {
				earliest = deadline
			}
			return Span{Lo: earliest, Hi: eHi, Nominal: eLo, Basis: fmt.Sprintf(
				"%s: abort at the first timer expiry at or past %s from %s; last retransmission on the wire + RTO %s, timers late by up to their granule + %s measured",
				from, fmtSecs(bound), what, fmtSecs(rto), fmtSecs(l.MaxLate()))}, nil
		}
		n++
		rto = model.NextRTO(rto, l.Base, model.RTOMax, n, c.Thin)
		lo, hi = eLo, earlierT(eHi, deadline)
	}
	return Span{}, fmt.Errorf("no abort along the ladder")
}

// clampUT is the user timeout the retransmit timer is clamped to.
func clampUT(c AbortCase) time.Duration { return c.UserTimeout }

// boundOf is the abort bound and the rule that gives it.
func boundOf(c AbortCase) (time.Duration, string) {
	if c.UserTimeout > 0 {
		return c.UserTimeout, fmt.Sprintf("TCP_USER_TIMEOUT=%s", fmtSecs(c.UserTimeout))
	}
	return model.RetransmitTimeout(c.Retries2, model.RTOMin, model.RTOMax), fmt.Sprintf("tcp_retries2=%d", c.Retries2)
}

// kernelKeepalive is tcp_keepalive_timer: after the idle time since the last
// segment received it sends a probe every interval; at the firing after the
// last probe it aborts once the probe count is reached (or, with
// TCP_USER_TIMEOUT, once the time since the last receive reaches it with a
// probe out). The window runs from the last probe on the wire plus the
// interval, late by up to the interval timer's granule plus the largest
// lateness measured between probes.
func kernelKeepalive(c KeepaliveCase) (Span, error) {
	if len(c.Probes) == 0 {
		return Span{}, fmt.Errorf("no keepalive probe on the wire")
	}
	last := c.Probes[len(c.Probes)-1]
	late := keepaliveLate(c)
	nominal := last.Add(c.Keepalive.Intvl)
	return Span{Lo: nominal, Hi: nominal.Add(model.TimerSlack(c.Keepalive.Intvl, c.HZ) + maxDur(late)), Nominal: nominal,
		Basis: fmt.Sprintf("the keepalive timer's firing one interval (%s) after the last of %d probes on the wire, late by up to its granule + %s measured",
			fmtSecs(c.Keepalive.Intvl), len(c.Probes), fmtSecs(maxDur(late)))}, nil
}

// keepaliveLate measures the keepalive timer's lateness: the first probe
// against the last receive plus the idle time, each later one against the
// one before plus the interval.
func keepaliveLate(c KeepaliveCase) []time.Duration {
	var late []time.Duration
	if len(c.Probes) > 0 && !c.LastRecv.IsZero() {
		late = append(late, c.Probes[0].Sub(c.LastRecv.Add(c.Keepalive.Idle)))
	}
	for i := 1; i < len(c.Probes); i++ {
		late = append(late, c.Probes[i].Sub(c.Probes[i-1].Add(c.Keepalive.Intvl)))
	}
	return late
}

// kernelReset: a rebooted host has no socket for the connection, so the
// first of the client's segments to reach it once its lab link is up is
// answered with RST, and the client learns when that RST arrives — the
// first retransmission at or after the link came up, plus the server's
// turnaround (measured on the wire: the RST against the retransmission it
// answered).
func kernelReset(c ResetCase) (Span, error) {
	k1, k2 := -1, -1
	for i, t := range c.Retrans {
		if k1 < 0 && !t.Before(c.Up.Add(-c.UpUncert)) {
			k1 = i
		}
		if k2 < 0 && !t.Before(c.Up.Add(c.UpUncert)) {
			k2 = i
		}
	}
	if k1 < 0 || k2 < 0 {
		return Span{}, fmt.Errorf("no retransmission reached the server after its link came up")
	}
	turn, err := turnaround(c)
	if err != nil {
		return Span{}, err
	}
	return Span{Lo: c.Retrans[k1], Hi: c.Retrans[k2].Add(turn), Nominal: c.Retrans[k2],
		Basis: fmt.Sprintf("the first retransmission after the server's link came up (%d after the fault), answered by RST within the %s turnaround measured on the wire",
			k1+1, fmtSecs(turn))}, nil
}

// turnaround is the time from the retransmission the server's RST answered
// to the RST, both on the client's wire.
func turnaround(c ResetCase) (time.Duration, error) {
	if c.RST.IsZero() {
		return 0, fmt.Errorf("no RST from the server on the client's wire")
	}
	var before time.Time
	for _, t := range c.Retrans {
		if !t.After(c.RST) {
			before = t
		}
	}
	if before.IsZero() {
		return 0, fmt.Errorf("the server's RST precedes every retransmission")
	}
	return c.RST.Sub(before), nil
}

// Wrong rules, each a model the kernel does not follow; a sound verdict must
// reject each on some recorded run.
var (
	// WrongAbortAtBound aborts exactly at retrans_stamp + the bound.
	WrongAbortAtBound = Rules{Name: "abort exactly at the bound", Abort: func(c AbortCase) (Span, error) {
		bound, from := boundOf(c)
		at := c.Ladder.RetransStamp().Add(bound)
		return Span{Lo: at, Hi: at.Add(c.Ladder.MaxLate()), Nominal: at, Basis: from + " from retrans_stamp, exactly"}, nil
	}, Keepalive: kernelKeepalive, Reset: kernelReset}
	// WrongBoundFromSend counts the bound from the segment's original send.
	WrongBoundFromSend = Rules{Name: "bound counted from the original send", Abort: func(c AbortCase) (Span, error) {
		return abortFrom(c, c.Ladder.Sent, "the original send")
	}, Keepalive: kernelKeepalive, Reset: kernelReset}
	// WrongCountAbort aborts after tcp_retries2 RTO retransmissions,
	// whatever the time.
	WrongCountAbort = Rules{Name: "count-based abort", Abort: countAbort, Keepalive: kernelKeepalive, Reset: kernelReset}
	// WrongImmediateRST has the rebooted host reset the connection the
	// moment its link is up.
	WrongImmediateRST = Rules{Name: "RST immediately at reboot", Abort: kernelAbort, Keepalive: kernelKeepalive,
		Reset: func(c ResetCase) (Span, error) {
			turn, err := turnaround(c)
			if err != nil {
				return Span{}, err
			}
			return Span{Lo: c.Up, Hi: c.Up.Add(turn), Nominal: c.Up, Slack: c.UpUncert, Basis: "RST as the link comes up"}, nil
		}}
	// WrongKeepaliveCount aborts at idle + (cnt-1) x intvl: at the last
	// probe instead of one interval after it.
	WrongKeepaliveCount = Rules{Name: "keepalive abort at idle + (cnt-1) x intvl", Abort: kernelAbort, Reset: kernelReset,
		Keepalive: func(c KeepaliveCase) (Span, error) {
			if len(c.Probes) == 0 {
				return Span{}, fmt.Errorf("no keepalive probe on the wire")
			}
			last := c.Probes[len(c.Probes)-1]
			return Span{Lo: last, Hi: last.Add(model.TimerSlack(c.Keepalive.Intvl, c.HZ) + maxDur(keepaliveLate(c))), Nominal: last,
				Basis: "abort at the last probe"}, nil
		}}
)

// WrongRules lists the wrong rule sets the mutation tests run.
var WrongRules = []Rules{WrongAbortAtBound, WrongBoundFromSend, WrongCountAbort, WrongImmediateRST, WrongKeepaliveCount,
	WrongHealImmediate, WrongSynNoLinear, WrongSynCountOnly, WrongSynAbortAtLast, WrongSynNoNeighbour, WrongClosedPortDrops,
	WrongPersistProbeCount, WrongPersistUTAnswered}

// countAbort aborts at the expiry of the timer armed after the
// tcp_retries2-th RTO retransmission.
func countAbort(c AbortCase) (Span, error) {
	l := c.Ladder
	if c.UserTimeout > 0 {
		return kernelAbort(c)
	}
	allow := func(d time.Duration) time.Duration { return model.TimerSlack(d, c.HZ) + l.MaxLate() }
	if len(l.Rungs) >= c.Retries2 && c.Retries2 > 0 {
		r := l.Rungs[c.Retries2-1]
		at := r.At.Add(r.Armed)
		return Span{Lo: at, Hi: at.Add(allow(r.Armed)), Nominal: at, Basis: fmt.Sprintf("the expiry after %d RTO retransmissions", c.Retries2)}, nil
	}
	last := l.Last()
	lo, hi, rto, n := last.At, last.At, last.Armed, len(l.Rungs)
	for {
		lo, hi = lo.Add(rto), hi.Add(rto+allow(rto))
		if n >= c.Retries2 {
			return Span{Lo: lo, Hi: hi, Nominal: lo, Basis: fmt.Sprintf("the expiry after %d RTO retransmissions", c.Retries2)}, nil
		}
		n++
		rto = model.NextRTO(rto, l.Base, model.RTOMax, n, c.Thin)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlierT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// secs formats a duration as seconds with millisecond precision.
func fmtSecs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }
