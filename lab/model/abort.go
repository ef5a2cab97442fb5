package model

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalidInput marks a prediction asked for with inputs the kernel model
// cannot take (negative counts, non-positive RTO and the like).
var ErrInvalidInput = errors.New("invalid model input")

// DefaultTimerLatency is the allowance per kernel timer, on top of the wheel
// granule, for softirq and vCPU scheduling delay in a TCG guest.
const DefaultTimerLatency = 20 * time.Millisecond

// maxTimers caps the simulated timer chain; real chains are a few dozen long.
const maxTimers = 10000

// AbortInput describes an established connection with unacknowledged data
// whose peer has gone silent. Times are offsets on the caller's axis, whose
// origin must lie at or before Sent (normally the last ACK from the peer).
type AbortInput struct {
	// Retries2 is net.ipv4.tcp_retries2 on the sending side.
	Retries2 int `json:"retries2"`
	// UserTimeout is TCP_USER_TIMEOUT; 0 means unset.
	UserTimeout time.Duration `json:"user_timeout_ns,omitempty"`
	// RTO is the retransmission timeout armed for the first retransmission
	// (icsk_rto before any backoff: >= 200 ms, about 3 s after a slow handshake).
	RTO time.Duration `json:"rto_ns"`
	// Sent is when the oldest unacknowledged segment was sent.
	Sent time.Duration `json:"sent_ns"`
	// Probe is the tail loss probe delay after Sent (see ProbeTimeout);
	// 0 means no probe. The RTO timer restarts from the probe.
	Probe time.Duration `json:"probe_ns,omitempty"`
	// RetransStamp is the measured send time of the first RTO retransmission;
	// 0 means unmeasured, predicted as Sent+Probe+RTO.
	RetransStamp time.Duration `json:"retrans_stamp_ns,omitempty"`
	// SoftError is the errno name of a soft error stored before the abort
	// (e.g. EHOSTUNREACH from ICMP); the abort reports it instead of ETIMEDOUT.
	SoftError string `json:"soft_error,omitempty"`
	// RTOMax is the RTO ceiling; 0 means RTOMax (tcp_rto_max_ms since 6.15).
	RTOMax time.Duration `json:"rto_max_ns,omitempty"`
	// HZ is the guest kernel's tick rate; 0 means DefaultHZ.
	HZ int `json:"hz,omitempty"`
	// Latency is the per-timer allowance beyond the wheel granule; 0 means
	// DefaultTimerLatency, negative means none.
	Latency time.Duration `json:"latency_ns,omitempty"`
	// ClockUncertainty is the ± uncertainty of the clock the measurement
	// will be read on; it becomes the window's slack.
	ClockUncertainty time.Duration `json:"clock_uncertainty_ns,omitempty"`
	// ThinLinear says the first ThinLinearRetries RTO retransmissions keep
	// the RTO instead of doubling it: net.ipv4.tcp_thin_linear_timeouts (or
	// TCP_THIN_LINEAR_TIMEOUTS) on a thin stream (fewer than four packets
	// out), as a one-line-at-a-time writer is.
	ThinLinear bool `json:"thin_linear,omitempty"`
}

// ThinLinearRetries is TCP_THIN_LINEAR_RETRIES: the number of RTO
// retransmissions of a thin stream that keep the RTO linear.
const ThinLinearRetries = 6

// NextRTO is the RTO armed after the n-th RTO retransmission (n >= 1),
// given the RTO in force before it: doubled up to rtoMax, or, for a thin
// stream with linear timeouts, kept at base (the RTO computed from the RTT,
// icsk_backoff reset) for the first ThinLinearRetries retransmissions.
func NextRTO(prev, base, rtoMax time.Duration, n int, thinLinear bool) time.Duration {
	if thinLinear && n <= ThinLinearRetries {
		return min(base, rtoMax)
	}
	return min(2*prev, rtoMax)
}

// Transmission is one predicted event of the retransmission ladder.
type Transmission struct {
	// At is the nominal time of the event on the caller's axis.
	At time.Duration `json:"at_ns"`
	// Kind is "probe", "retransmit" or "abort".
	Kind string `json:"kind"`
	// RTO is the timer armed after the event (0 after the abort).
	RTO time.Duration `json:"rto_ns,omitempty"`
}

// AbortPrediction is the model's account of when and how the kernel ends a
// connection whose unacknowledged data is never acknowledged.
type AbortPrediction struct {
	// Bound is the time from retrans_stamp after which the connection counts
	// as timed out: TCP_USER_TIMEOUT if set, else tcp_model_timeout.
	Bound time.Duration `json:"bound_ns"`
	// BoundFrom names the rule that gave Bound.
	BoundFrom string `json:"bound_from"`
	// RetransStamp is the (measured or nominal) first RTO retransmission.
	RetransStamp time.Duration `json:"retrans_stamp_ns"`
	// Schedule lists the nominal probe, retransmissions and abort in order.
	Schedule []Transmission `json:"schedule"`
	// Retransmissions is the number of RTO retransmissions before the abort
	// when every timer fires on time.
	Retransmissions int `json:"retransmissions"`
	// MinRetransmissions is the fewest RTO retransmissions before the abort
	// that timer lateness allows (a late expiry may cross the bound first).
	MinRetransmissions int `json:"min_retransmissions"`
	// Abort is the nominal abort instant: the first RTO expiry at or past
	// retrans_stamp + Bound when every timer fires on time.
	Abort time.Duration `json:"abort_ns"`
	// Earliest is the earliest abort any timer lateness allows.
	Earliest time.Duration `json:"earliest_ns"`
	// Latest is the latest abort when every timer fires as late as allowed.
	Latest time.Duration `json:"latest_ns"`
	// Slack is the clock uncertainty of the measurement the prediction
	// will be compared with.
	Slack time.Duration `json:"slack_ns"`
	// Error is the errno name the application will see.
	Error string `json:"error"`
	// Reason explains the prediction in one line.
	Reason string `json:"reason"`
}

// timerLen is the length of the retransmit timer armed at elapsed a (from
// retrans_stamp) with the current icsk_rto, after tcp_clamp_rto_to_user_timeout.
func timerLen(a, rto, ut, tick time.Duration) time.Duration {
	if ut <= 0 {
		return rto
	}
	rem := ut - a
	if rem <= 0 {
		return tick
	}
	return min(rto, rem)
}

// PredictAbort simulates the retransmission ladder of tcp_retransmit_timer
// and returns when tcp_write_timeout ends the connection.
//
// After the first RTO retransmission (retrans_stamp) the RTO doubles on each
// expiry, capped at RTOMax; with TCP_USER_TIMEOUT the timer is clamped to fire
// at the user timeout. The bound is checked only when the timer fires, so the
// abort is the first expiry at or past it. Each timer may fire late by
// TimerSlack plus Latency, and the next one is armed from the late firing, so
// lateness accumulates; it can also make an earlier expiry cross the bound,
// which is why Earliest can lie a whole RTO before Abort.
func PredictAbort(in AbortInput) (AbortPrediction, error) {
	if err := in.validate(); err != nil {
		return AbortPrediction{}, fmt.Errorf("predict abort: %w", err)
	}
	rtoMax := in.RTOMax
	if rtoMax == 0 {
		rtoMax = RTOMax
	}
	lat := in.Latency
	if lat == 0 {
		lat = DefaultTimerLatency
	}
	lat = max(lat, 0)
	tick := jiffy(in.HZ)
	late := func(d time.Duration) time.Duration { return TimerSlack(d, in.HZ) + lat }

	var p AbortPrediction
	if in.Probe > 0 {
		p.Schedule = append(p.Schedule, Transmission{At: in.Sent + in.Probe, Kind: "probe", RTO: in.RTO})
	}
	var pre time.Duration // how late the first retransmission may be
	p.RetransStamp = in.RetransStamp
	if p.RetransStamp == 0 {
		p.RetransStamp = in.Sent + in.Probe + in.RTO
		pre = late(in.RTO)
		if in.Probe > 0 {
			pre += late(in.Probe)
		}
	}
	if in.UserTimeout > 0 {
		p.Bound = in.UserTimeout
		p.BoundFrom = fmt.Sprintf("TCP_USER_TIMEOUT=%s", secs(in.UserTimeout))
	} else {
		p.Bound = RetransmitTimeout(in.Retries2, RTOMin, rtoMax)
		p.BoundFrom = fmt.Sprintf("tcp_retries2=%d", in.Retries2)
	}

	// Interval simulation on elapsed time since the actual retrans_stamp:
	// the low end is the nominal chain (no lateness), the high end the
	// chain with every timer as late as allowed.
	rto := NextRTO(in.RTO, in.RTO, rtoMax, 1, in.ThinLinear)
	p.Retransmissions = 1
	p.Schedule = append(p.Schedule, Transmission{At: p.RetransStamp, Kind: "retransmit", RTO: timerLen(0, rto, in.UserTimeout, tick)})
	var aLo, aHi time.Duration
	earliest := time.Duration(-1)
	for range maxTimers {
		lenLo := timerLen(aLo, rto, in.UserTimeout, tick)
		eLo := aLo + lenLo
		eHi := aHi + timerLen(aHi, rto, in.UserTimeout, tick) + late(lenLo)
		if eHi >= p.Bound && earliest < 0 {
			earliest = max(p.Bound, eLo)
			p.MinRetransmissions = p.Retransmissions
		}
		if eLo >= p.Bound {
			p.Abort = p.RetransStamp + eLo
			p.Earliest = p.RetransStamp + earliest
			p.Latest = p.RetransStamp + pre + eHi
			p.Schedule = append(p.Schedule, Transmission{At: p.Abort, Kind: "abort"})
			p.finish(in, rto)
			return p, nil
		}
		aLo, aHi = eLo, min(eHi, p.Bound)
		p.Retransmissions++
		rto = NextRTO(rto, in.RTO, rtoMax, p.Retransmissions, in.ThinLinear)
		p.Schedule = append(p.Schedule, Transmission{At: p.RetransStamp + eLo, Kind: "retransmit", RTO: timerLen(eLo, rto, in.UserTimeout, tick)})
	}
	return AbortPrediction{}, fmt.Errorf("predict abort: no abort within %d timers: %w", maxTimers, ErrInvalidInput)
}

// finish fills the error, tolerance and reason once the ladder is known.
func (p *AbortPrediction) finish(in AbortInput, lastRTO time.Duration) {
	p.Error = ETIMEDOUT
	if in.SoftError != "" {
		p.Error = in.SoftError
	}
	p.Slack = in.ClockUncertainty
	how := "first RTO expiry at or past the bound"
	if in.UserTimeout > 0 {
		how = "timer clamped to the user timeout"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: bound %s from retrans_stamp %s; abort at %s (%s; %d retransmissions, last RTO %s)",
		p.BoundFrom, secs(p.Bound), secs(p.RetransStamp), secs(p.Abort), how, p.Retransmissions, secs(lastRTO))
	if in.ThinLinear {
		fmt.Fprintf(&b, "; thin stream with linear timeouts: the first %d RTOs do not double", ThinLinearRetries)
	}
	fmt.Fprintf(&b, "; timers allow %s..%s", secs(p.Earliest), secs(p.Latest))
	if in.SoftError != "" {
		fmt.Fprintf(&b, "; soft error %s reported instead of ETIMEDOUT", in.SoftError)
	}
	p.Reason = b.String()
}

// validate rejects inputs outside the kernel model.
func (in AbortInput) validate() error {
	switch {
	case in.Retries2 < 0:
		return fmt.Errorf("tcp_retries2 %d is negative: %w", in.Retries2, ErrInvalidInput)
	case in.RTO <= 0:
		return fmt.Errorf("rto %v is not positive: %w", in.RTO, ErrInvalidInput)
	case in.UserTimeout < 0:
		return fmt.Errorf("user timeout %v is negative: %w", in.UserTimeout, ErrInvalidInput)
	case in.Probe < 0:
		return fmt.Errorf("probe delay %v is negative: %w", in.Probe, ErrInvalidInput)
	case in.RTOMax < 0 || (in.RTOMax > 0 && in.RTOMax < RTOMin):
		return fmt.Errorf("rto max %v is below the rto min: %w", in.RTOMax, ErrInvalidInput)
	case in.ClockUncertainty < 0:
		return fmt.Errorf("clock uncertainty %v is negative: %w", in.ClockUncertainty, ErrInvalidInput)
	}
	return nil
}

// Window is the prediction's detection window on the caller's axis.
func (p AbortPrediction) Window() Window {
	return Window{Earliest: p.Earliest, Latest: p.Latest, Nominal: p.Abort, Slack: p.Slack,
		Basis: "the kernel's ladder with every timer on time, up to the per-timer allowance late"}
}

// Expectation turns the prediction into the expectation a scenario checks.
func (p AbortPrediction) Expectation() Expectation {
	w := p.Window()
	return Expectation{Errors: []string{p.Error}, Reason: p.Reason, Window: &w}
}

// secs formats d as seconds with millisecond precision.
func secs(d time.Duration) string {
	return fmt.Sprintf("%.3f s", d.Seconds())
}
