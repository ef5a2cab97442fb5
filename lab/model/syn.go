package model

import "time"

// ConnectSchedule returns the send times of the SYN retransmissions and the
// time connect() fails with ETIMEDOUT, for a peer that never answers.
//
// The SYN timer starts at RTOInit (1 s). Kernels 6.5 and later retransmit
// synRetries+linearTimeouts times, keeping the RTO at 1 s for the first
// linearTimeouts retransmissions (tcp_syn_linear_timeouts) and doubling it
// afterwards; older kernels are linearTimeouts = 0. The RTO is capped at
// RTOMax. Negative arguments count as 0.
func ConnectSchedule(synRetries, linearTimeouts int) (retransmits []time.Duration, fail time.Duration) {
	synRetries, linearTimeouts = max(synRetries, 0), max(linearTimeouts, 0)
	var t time.Duration
	rto := RTOInit
	for k := 1; k <= synRetries+linearTimeouts; k++ {
		t += rto
		retransmits = append(retransmits, t)
		if k > linearTimeouts {
			rto = min(2*rto, RTOMax)
		}
	}
	return retransmits, t + rto
}

// ConnectTimeout is how long connect() to a silent peer takes to fail:
// 127 s for tcp_syn_retries=6 (1+2+4+8+16+32+64), 131 s with
// tcp_syn_linear_timeouts=4 (5x1 s, then 2+4+8+16+32+64).
func ConnectTimeout(synRetries, linearTimeouts int) time.Duration {
	_, fail := ConnectSchedule(synRetries, linearTimeouts)
	return fail
}
