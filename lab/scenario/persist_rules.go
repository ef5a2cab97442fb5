package scenario

import (
	"fmt"
	"time"

	"github.com/hostlab/hostlab/lab/model"
)

// PersistCase is a sender whose peer's receive window closed and stays
// closed while the peer's kernel lives, as a run measured it on the
// client's wire.
type PersistCase struct {
	// Closed is the peer's first zero-window segment after the fault.
	Closed time.Time
	// Probes are the client's window probes (no data, seq = snd_una-1).
	Probes []time.Time
	// Answers[i] is the peer's answer to Probes[i] (zero: none).
	Answers []time.Time
	// Base is tcp_probe0_base: the client's RTO in force (TCP_INFO), at
	// least TCP_RTO_MIN; Backoff its icsk_backoff before the first probe.
	Base    time.Duration
	Backoff int
	// UserTimeout is TCP_USER_TIMEOUT read back (0: unset).
	UserTimeout time.Duration
	// Retries2 is the client's tcp_retries2.
	Retries2 int
	// RateLimit is the server's tcp_invalid_ratelimit.
	RateLimit time.Duration
	// End is the end of the evidence: the client's report, or hostlab's
	// stop.
	End time.Time
	// HZ is the kernels' tick rate.
	HZ int
}

// PersistOutcome is how a rule says the connection ends: the errors it
// allows (model.NoError: it does not), the window, why, and its checks.
type PersistOutcome struct {
	Span   *Span
	Errors []string
	Why    string
	Checks []model.Result
	Late   []time.Duration
}

// persistRule is the persist-timer rule with switches for wrong models.
type persistRule struct {
	// noReset keeps counting answered probes towards tcp_retries2.
	noReset bool
	// utUnanswered has TCP_USER_TIMEOUT count only unanswered probes
	// (kernels before 5.11): answered probes never time out.
	utUnanswered bool
}

// kernelPersist is Linux's rule (tcp_probe_timer, tcp_send_probe0,
// tcp_ack_probe; the peer's tcp_oow_rate_limited).
func kernelPersist(c PersistCase) (PersistOutcome, error) { return persistRule{}.apply(c) }

// Wrong persist rules.
var (
	// WrongPersistProbeCount ends the connection after tcp_retries2
	// probes, answered or not.
	WrongPersistProbeCount = persistWrong("persist ends after tcp_retries2 probes, answered or not", persistRule{noReset: true})
	// WrongPersistUTAnswered lets answered probes keep a connection with
	// TCP_USER_TIMEOUT alive (the kernel before 5.11).
	WrongPersistUTAnswered = persistWrong("TCP_USER_TIMEOUT spares answered window probes (before 5.11)", persistRule{utUnanswered: true})
)

func persistWrong(name string, r persistRule) Rules {
	return Rules{Name: name, Abort: kernelAbort, Keepalive: kernelKeepalive, Reset: kernelReset, Syn: kernelSyn, Persist: r.apply}
}

// apply walks the measured probe ladder with the rule and projects it to
// the connection's end, if any before the evidence ends.
func (r persistRule) apply(c PersistCase) (PersistOutcome, error) {
	if len(c.Probes) == 0 {
		return PersistOutcome{}, fmt.Errorf("no window probe from the client on the wire")
	}
	if c.Base <= 0 {
		return PersistOutcome{}, fmt.Errorf("no RTO read before the first probe")
	}
	ut := c.UserTimeout
	if r.utUnanswered {
		ut = 0
	}
	tick := jiffyOf(c.HZ)
	p1 := c.Probes[0]
	var o PersistOutcome
	backoff, run, maxRun := c.Backoff, 0, 0
	var lastAnswered time.Time
	mismatches, early := 0, 0
	var from time.Time
	var when time.Duration
	for k, pr := range c.Probes {
		if ut > 0 && !pr.Before(p1.Add(ut+tick+2*time.Millisecond)) {
			return o, fmt.Errorf("a window probe %.3f s after the first is at or past the user timeout %s, where the kernel aborts: %w",
				pr.Sub(p1).Seconds(), fmtSecs(ut), errContradicted)
		}
		if k > 0 {
			late := pr.Sub(from.Add(when))
			o.Late = append(o.Late, late)
			if late < -(tick + 2*time.Millisecond) {
				early++
			}
		}
		if backoff < c.Retries2 {
			backoff++
		}
		ans := c.Answers[k]
		gap := pr.Sub(lastAnswered)
		want := lastAnswered.IsZero() || gap >= c.RateLimit
		near := !lastAnswered.IsZero() && absDur(gap-c.RateLimit) <= 2*tick+2*time.Millisecond
		if (!ans.IsZero()) != want && !near {
			mismatches++
		}
		from = pr
		if !ans.IsZero() {
			lastAnswered, from = pr, ans
			if !r.noReset {
				run = 0
			}
		}
		if ans.IsZero() || r.noReset {
			run++
			maxRun = max(maxRun, run)
		}
		when = model.ProbeWhen(c.Base, backoff)
		if ut > 0 {
			when = min(when, max(p1.Add(ut).Sub(from), 2*tick))
		}
		if run >= c.Retries2 && k+1 < len(c.Probes) {
			return o, fmt.Errorf("%d window probes in a row counted unanswered, yet the client probed again: the kernel aborts at tcp_retries2=%d: %w",
				run, c.Retries2, errContradicted)
		}
	}
	answered := 0
	for _, a := range c.Answers {
		if !a.IsZero() {
			answered++
		}
	}
	if mismatches > 0 {
		o.Checks = append(o.Checks, model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf(
			"%d of %d window probes answered otherwise than the server's rate limit (one out-of-window ACK per %s) allows", mismatches, len(c.Probes), fmtSecs(c.RateLimit))})
	} else {
		o.Checks = append(o.Checks, model.Result{Verdict: model.Expected, Why: fmt.Sprintf(
			"%d window probes, %d answered with a zero window, as the server's rate limit (one out-of-window ACK per %s) allows",
			len(c.Probes), answered, fmtSecs(c.RateLimit))})
	}
	if early > 0 {
		o.Checks = append(o.Checks, model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf("%d window probes came before their timer (base %s, doubling) could fire", early, fmtSecs(c.Base))})
	}
	maxLate := maxDur(o.Late)
	allow := func(d time.Duration) time.Duration { return model.TimerSlack(d, c.HZ) + maxLate }
	// Project from the last probe: the next firing aborts if the user
	// timeout has passed or tcp_retries2 unanswered probes are out; else
	// it probes again (answered as the rate limit allows).
	lo, hi := from.Add(when), from.Add(when+allow(when))
	for range 10000 {
		switch {
		case ut > 0 && !lo.Before(p1.Add(ut)):
			o.Errors = []string{model.ETIMEDOUT}
			o.Span = &Span{Lo: lo, Hi: hi, Nominal: lo, Basis: fmt.Sprintf(
				"TCP_USER_TIMEOUT %s from the first window probe (icsk_probes_tstamp), where the probe timer is clamped to fire; late by up to its granule + %s measured",
				fmtSecs(ut), fmtSecs(maxLate))}
			o.Why = fmt.Sprintf("the server's kernel answers the window probes, so only TCP_USER_TIMEOUT (%s) ends the connection: ETIMEDOUT", fmtSecs(ut))
			return o, nil
		case run >= c.Retries2:
			o.Errors = []string{model.ETIMEDOUT}
			o.Span = &Span{Lo: lo, Hi: hi, Nominal: lo, Basis: fmt.Sprintf("the probe timer's firing after %d probes counted unanswered (tcp_retries2=%d)", run, c.Retries2)}
			o.Why = fmt.Sprintf("%d window probes counted unanswered reach tcp_retries2=%d: ETIMEDOUT", run, c.Retries2)
			return o, nil
		case !c.End.IsZero() && lo.After(c.End):
			o.Errors = []string{model.NoError}
			o.Why = fmt.Sprintf("the server's kernel answers the window probes (at most one per %s) and each answer resets the count of unanswered probes, so nothing ends the connection: no TCP_USER_TIMEOUT, keepalive suspended while data waits; the longest run of unanswered probes was %d, below tcp_retries2=%d",
				fmtSecs(c.RateLimit), maxRun, c.Retries2)
			if ut > 0 && r.utUnanswered {
				o.Why = fmt.Sprintf("TCP_USER_TIMEOUT %s counts only unanswered window probes, and the server answers them: nothing ends the connection", fmtSecs(c.UserTimeout))
			}
			return o, nil
		}
		if backoff < c.Retries2 {
			backoff++
		}
		ansd := lo.Sub(lastAnswered) >= c.RateLimit
		from = lo
		if ansd {
			lastAnswered = lo
			if !r.noReset {
				run = 0
			}
		}
		if !ansd || r.noReset {
			run++
		}
		when = model.ProbeWhen(c.Base, backoff)
		if ut > 0 {
			when = min(when, max(p1.Add(ut).Sub(from), 2*tick))
		}
		lo, hi = lo.Add(when), hi.Add(when+allow(when))
	}
	return o, fmt.Errorf("no end along the persist ladder")
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
