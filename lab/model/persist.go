package model

import (
	"fmt"
	"time"
)

// ProbeBackoffCap is the largest shift tcp_probe0_when applies to the probe
// base: ilog2(TCP_RTO_MAX / TCP_RTO_MIN) + 1.
const ProbeBackoffCap = 10

// DefaultInvalidRatelimit is net.ipv4.tcp_invalid_ratelimit: a receiver
// answers out-of-window segments without data (a zero-window probe is one)
// with at most one duplicate ACK per this interval and connection.
const DefaultInvalidRatelimit = 500 * time.Millisecond

// PersistInput describes a sender with data queued whose peer's receive
// window stays closed: the peer's kernel lives, so it answers the window
// probes, but its program reads nothing.
type PersistInput struct {
	// Base is tcp_probe0_base: the RTO (icsk_rto) in force, at least
	// TCP_RTO_MIN.
	Base time.Duration `json:"base_ns"`
	// Backoff is icsk_backoff when the first probe timer fires (0 after
	// data was acknowledged).
	Backoff int `json:"backoff,omitempty"`
	// UserTimeout is TCP_USER_TIMEOUT; 0 means unset.
	UserTimeout time.Duration `json:"user_timeout_ns,omitempty"`
	// Retries2 is net.ipv4.tcp_retries2: it caps the backoff and is the
	// number of unanswered probes in a row that ends the connection.
	Retries2 int `json:"retries2"`
	// RateLimit is the peer's tcp_invalid_ratelimit (0: none).
	RateLimit time.Duration `json:"rate_limit_ns"`
	// RTT is the time from a probe to the peer's answer.
	RTT time.Duration `json:"rtt_ns"`
	// Horizon ends the simulation when nothing ended the connection by
	// then, counted from the first probe.
	Horizon time.Duration `json:"horizon_ns"`
}

// PersistProbe is one predicted window probe.
type PersistProbe struct {
	// At is the probe's send time from the first probe.
	At time.Duration `json:"at_ns"`
	// Answered says the peer's rate limit lets it answer the probe.
	Answered bool `json:"answered"`
	// When is the probe timer armed for the next probe: from the answer
	// when there is one, else from the probe.
	When time.Duration `json:"when_ns"`
}

// PersistPlan is the persist timer's ladder and its end.
type PersistPlan struct {
	// Probes are the probes, from the first (icsk_probes_tstamp).
	Probes []PersistProbe `json:"probes"`
	// Abort is when the connection ends with ETIMEDOUT, from the first
	// probe; 0 with Never.
	Abort time.Duration `json:"abort_ns,omitempty"`
	// Never says nothing ends the connection within the horizon: every
	// answer resets the unanswered-probe count and no user timeout is set.
	Never bool `json:"never,omitempty"`
	// By says what ended it: "user_timeout" or "retries2".
	By string `json:"by,omitempty"`
	// MaxUnanswered is the longest run of unanswered probes.
	MaxUnanswered int `json:"max_unanswered"`
}

// ProbeWhen is tcp_probe0_when: base shifted by the backoff (at most
// ProbeBackoffCap), capped at RTOMax.
func ProbeWhen(base time.Duration, backoff int) time.Duration {
	return min(base<<min(max(backoff, 0), ProbeBackoffCap), RTOMax)
}

// clampProbe is tcp_clamp_probe0_to_user_timeout: with a user timeout, a
// probe timer armed elapsed after the first probe fires no later than the
// user timeout (and no sooner than TCP_TIMEOUT_MIN, two jiffies).
func clampProbe(when, elapsed, ut time.Duration) time.Duration {
	if ut <= 0 {
		return when
	}
	return min(when, max(ut-elapsed, 2*jiffy(0)))
}

// PlanPersist simulates the persist timer (net/ipv4/tcp_timer.c
// tcp_probe_timer, tcp_output.c tcp_send_probe0, tcp_input.c tcp_ack_probe)
// against a live peer whose window stays shut, every timer on time.
//
// The first firing stamps icsk_probes_tstamp and sends a probe. Every later
// firing first ends the connection if a user timeout is set and has passed
// since that stamp, or if icsk_probes_out has reached tcp_retries2; else it
// sends a probe. Each probe counts in icsk_probes_out, raises the backoff
// (while below tcp_retries2) and arms the timer at ProbeWhen, clamped to the
// user timeout. An answer — the peer's zero-window ACK, which its
// tcp_invalid_ratelimit allows once per RateLimit — resets icsk_probes_out
// and re-arms the timer from its arrival with the same backoff. So without a
// user timeout the connection lives as long as the peer answers (RFC 1122
// 4.2.2.17); with one it ends at the first firing at or after the user
// timeout from the first probe, which the clamp puts right there.
func PlanPersist(in PersistInput) (PersistPlan, error) {
	if in.Base <= 0 || in.Retries2 < 0 || in.UserTimeout < 0 || in.RTT < 0 || in.RateLimit < 0 || in.Horizon <= 0 {
		return PersistPlan{}, fmt.Errorf("plan persist: %+v: %w", in, ErrInvalidInput)
	}
	var p PersistPlan
	backoff, out, run := in.Backoff, 0, 0
	lastAnswer := time.Duration(-1)
	t := time.Duration(0)
	for i := 0; i < maxTimers; i++ {
		if i > 0 && in.UserTimeout > 0 && t >= in.UserTimeout {
			p.Abort, p.By = t, "user_timeout"
			return p, nil
		}
		if out >= in.Retries2 {
			p.Abort, p.By = t, "retries2"
			return p, nil
		}
		out++
		if backoff < in.Retries2 {
			backoff++
		}
		pr := PersistProbe{At: t, When: clampProbe(ProbeWhen(in.Base, backoff), t, in.UserTimeout)}
		next := t + pr.When
		if lastAnswer < 0 || t-lastAnswer >= in.RateLimit {
			pr.Answered, lastAnswer, out, run = true, t, 0, 0
			ack := t + in.RTT
			pr.When = clampProbe(ProbeWhen(in.Base, backoff), ack, in.UserTimeout)
			next = ack + pr.When
		} else {
			run++
			p.MaxUnanswered = max(p.MaxUnanswered, run)
		}
		p.Probes = append(p.Probes, pr)
		if next > in.Horizon && in.UserTimeout == 0 {
			p.Never = true
			return p, nil
		}
		t = next
	}
	return p, fmt.Errorf("plan persist: no end within %d probes", maxTimers)
}
