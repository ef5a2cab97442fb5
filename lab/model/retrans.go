package model

import (
	"math/bits"
	"time"
)

// RetransmitTimeout is the kernel's tcp_model_timeout: the time from
// retrans_stamp after which a connection that has retransmitted counts as
// timed out for the given tcp_retries2 (or tcp_retries1) value.
//
// With linear_backoff_thresh = ilog2(rtoMax/rtoMin) (9 for 200 ms / 120 s):
// retries <= thresh gives ((2<<retries)-1)*rtoMin; above it
// ((2<<thresh)-1)*rtoMin + (retries-thresh)*rtoMax. The kernel always uses
// TCP_RTO_MIN as rtoMin here, whatever RTO the connection really uses.
// Invalid arguments (negative retries, rtoMin <= 0, rtoMax < rtoMin) give 0.
func RetransmitTimeout(retries int, rtoMin, rtoMax time.Duration) time.Duration {
	if retries < 0 || rtoMin <= 0 || rtoMax < rtoMin {
		return 0
	}
	thresh := bits.Len64(uint64(rtoMax/rtoMin)) - 1
	if retries <= thresh {
		return time.Duration((int64(2)<<retries)-1) * rtoMin
	}
	return time.Duration((int64(2)<<thresh)-1)*rtoMin + time.Duration(retries-thresh)*rtoMax
}

// jiffy is the length of one tick at hz (DefaultHZ when hz <= 0).
func jiffy(hz int) time.Duration {
	if hz <= 0 {
		hz = DefaultHZ
	}
	return time.Second / time.Duration(hz)
}

// TimerSlack is the most a kernel timer of length d can fire late at the
// given HZ (DefaultHZ when hz <= 0): one granule of the timer-wheel level the
// timer lands in.
//
// kernel/time/timer.c puts a timer whose delta is below LVL_START(n) =
// 63<<(3(n-1)) jiffies into level n-1 and rounds its expiry up to the next
// multiple of LVL_GRAN = 8^level jiffies, so it never fires early and at most
// one granule late. At HZ=250 that is 4 ms (< 252 ms), 32 ms (< 2.016 s),
// 256 ms (< 16.128 s), 2.048 s (< 129.024 s), 16.384 s (< 1032 s) and
// 131.072 s (< 8257 s). Softirq and scheduling delay come on top.
func TimerSlack(d time.Duration, hz int) time.Duration {
	tick := jiffy(hz)
	if d < 0 {
		d = 0
	}
	j := int64((d + tick - 1) / tick) // msecs_to_jiffies rounds up
	lvl := 0
	for start := int64(63); j >= start && lvl < 8; start <<= 3 {
		lvl++
	}
	return time.Duration(int64(1)<<(3*lvl)) * tick
}

// ProbeTimeout is the tail loss probe timeout (PTO) of tcp_schedule_loss_probe:
// 2*srtt plus RTOMin when one packet is outstanding (to cover a delayed ACK)
// or plus 2 ms otherwise, TCP_TIMEOUT_INIT without an RTT sample, and never
// later than the RTO that would fire instead. The probe is not an RTO
// retransmission: it neither sets retrans_stamp nor backs the RTO off.
func ProbeTimeout(srtt, rto time.Duration, packetsOut int) time.Duration {
	var pto time.Duration
	switch {
	case srtt <= 0:
		pto = RTOInit
	case packetsOut == 1:
		pto = 2*srtt + RTOMin
	default:
		pto = 2*srtt + 2*time.Millisecond
	}
	if rto > 0 && rto < pto {
		pto = rto
	}
	return pto
}
