package model

import (
	"fmt"
	"time"
)

// SynInput describes a connect() whose SYN is never answered.
type SynInput struct {
	// Retries is net.ipv4.tcp_syn_retries (or TCP_SYNCNT).
	Retries int `json:"syn_retries"`
	// Linear is net.ipv4.tcp_syn_linear_timeouts (kernels 6.5 and later);
	// 0 on kernels without it.
	Linear int `json:"syn_linear_timeouts"`
	// RTO is the SYN's first retransmission timeout; 0 means RTOInit
	// (TCP_TIMEOUT_INIT, tcp_timeout_init without a BPF override).
	RTO time.Duration `json:"rto_ns,omitempty"`
	// UserTimeout is TCP_USER_TIMEOUT; 0 means unset.
	UserTimeout time.Duration `json:"user_timeout_ns,omitempty"`
}

// SynPlan is the kernel's SYN_SENT ladder for a peer that never answers:
// when each SYN goes out, the timer armed after it, and when and why
// tcp_write_timeout gives the connect up.
type SynPlan struct {
	// Sends are the SYN and its retransmissions, as offsets from the first
	// SYN (retrans_stamp); Sends[0] is 0.
	Sends []time.Duration `json:"sends_ns"`
	// Armed[i] is the retransmit timer armed after Sends[i] (icsk_rto).
	Armed []time.Duration `json:"armed_ns"`
	// Abort is when the connect fails with ETIMEDOUT, from the first SYN.
	Abort time.Duration `json:"abort_ns"`
	// MaxRetransmits is tcp_syn_retries + tcp_syn_linear_timeouts, the
	// count that ends SYN_SENT.
	MaxRetransmits int `json:"max_retransmits"`
	// Bound is the time bound checked beside the count: TCP_USER_TIMEOUT if
	// set, else tcp_model_timeout(tcp_syn_retries, 1 s).
	Bound time.Duration `json:"bound_ns"`
	// By says what ended it: "count" or "time".
	By string `json:"by"`
}

// Retransmits is the number of SYN retransmissions before the abort.
func (p SynPlan) Retransmits() int { return len(p.Sends) - 1 }

// SynBound is the time bound tcp_write_timeout applies in SYN_SENT besides
// the retransmission count: retransmits_timed_out with boundary
// tcp_syn_retries and base tcp_timeout_init (1 s), i.e.
// tcp_model_timeout(tcp_syn_retries, 1 s) — (2^(n+1)-1) s up to n = 6
// (127 s), then 120 s per retry more — counted from retrans_stamp, the
// first SYN. It does not grow with tcp_syn_linear_timeouts.
func SynBound(synRetries int) time.Duration {
	return RetransmitTimeout(synRetries, RTOInit, RTOMax)
}

// NextSynRTO is the SYN timer armed after the k-th retransmission (k >= 1)
// given the one before: tcp_retransmit_timer keeps it for as long as
// icsk_backoff (k after the k-th) is at most tcp_syn_linear_timeouts and
// doubles it, up to RTOMax, afterwards.
func NextSynRTO(prev time.Duration, k, linear int) time.Duration {
	if k <= linear {
		return prev
	}
	return min(2*prev, RTOMax)
}

// PlanConnect simulates tcp_retransmit_timer and tcp_write_timeout for a
// SYN that is never answered, every timer on time. At each expiry the
// connect ends if icsk_retransmits has reached tcp_syn_retries +
// tcp_syn_linear_timeouts, or else if the time since the first SYN has
// reached the bound (SynBound, or TCP_USER_TIMEOUT when set); otherwise the
// SYN is sent again and the timer re-armed (NextSynRTO; with
// TCP_USER_TIMEOUT clamped to the time left before it).
//
// On kernels without linear timeouts the count always ends it: the k-th
// expiry comes at (2^k-1) s, before the bound (2^(n+1)-1) s. With linear
// timeouts the time bound can end it first: tcp_syn_retries=2 with
// tcp_syn_linear_timeouts=4 gives up at 7 s after 5 retransmissions, not
// at 11 s after 6.
func PlanConnect(in SynInput) (SynPlan, error) {
	if in.Retries < 0 || in.Linear < 0 || in.RTO < 0 || in.UserTimeout < 0 {
		return SynPlan{}, fmt.Errorf("plan connect: %+v: %w", in, ErrInvalidInput)
	}
	rto := in.RTO
	if rto == 0 {
		rto = RTOInit
	}
	p := SynPlan{MaxRetransmits: in.Retries + in.Linear, Bound: SynBound(in.Retries)}
	if in.UserTimeout > 0 {
		p.Bound = in.UserTimeout
	}
	var t time.Duration
	for k := 0; ; k++ {
		armed := rto
		if k > 0 && in.UserTimeout > 0 {
			// tcp_clamp_rto_to_user_timeout (the first SYN's timer is not).
			armed = min(rto, max(in.UserTimeout-t, jiffy(0)))
		}
		p.Sends = append(p.Sends, t)
		p.Armed = append(p.Armed, armed)
		t += armed
		switch {
		case k >= p.MaxRetransmits:
			p.Abort, p.By = t, "count"
			return p, nil
		case t >= p.Bound:
			p.Abort, p.By = t, "time"
			return p, nil
		}
		rto = NextSynRTO(rto, k+1, in.Linear)
	}
}

// ConnectSchedule returns the send times of the SYN retransmissions and the
// time connect() fails with ETIMEDOUT, for a peer that never answers (see
// PlanConnect). Negative arguments count as 0.
func ConnectSchedule(synRetries, linearTimeouts int) (retransmits []time.Duration, fail time.Duration) {
	p, _ := PlanConnect(SynInput{Retries: max(synRetries, 0), Linear: max(linearTimeouts, 0)})
	return p.Sends[1:], p.Abort
}

// ConnectTimeout is how long connect() to a silent peer takes to fail:
// 127 s for tcp_syn_retries=6 (1+2+4+8+16+32+64), 131 s with
// tcp_syn_linear_timeouts=4 (5x1 s, then 2+4+8+16+32+64).
func ConnectTimeout(synRetries, linearTimeouts int) time.Duration {
	_, fail := ConnectSchedule(synRetries, linearTimeouts)
	return fail
}
