package model

import (
	"testing"
	"time"
)

func TestRetransmitTimeout(t *testing.T) {
	// thresh = ilog2(120 s / 200 ms) = ilog2(600) = 9.
	tests := []struct {
		retries int
		want    time.Duration
	}{
		{0, 200 * time.Millisecond},     // (2^1-1)*0.2
		{3, 3 * time.Second},            // tcp_retries1: (2^4-1)*0.2 = 3.0 s
		{5, 12600 * time.Millisecond},   // (2^6-1)*0.2 = 63*0.2 = 12.6 s
		{8, 102200 * time.Millisecond},  // (2^9-1)*0.2 = 511*0.2 = 102.2 s
		{9, 204600 * time.Millisecond},  // (2^10-1)*0.2 = 1023*0.2 = 204.6 s
		{10, 324600 * time.Millisecond}, // 204.6 + 1*120
		{15, 924600 * time.Millisecond}, // 204.6 + 6*120 = 924.6 s
	}
	for _, tt := range tests {
		if got := RetransmitTimeout(tt.retries, RTOMin, RTOMax); got != tt.want {
			t.Errorf("RetransmitTimeout(%d) = %v, want %v", tt.retries, got, tt.want)
		}
	}
	// A larger base (the SYN states use tcp_timeout_init = 1 s): thresh =
	// ilog2(120) = 6, so 6 -> (2^7-1)*1 s = 127 s, the SYN figure.
	if got := RetransmitTimeout(6, time.Second, RTOMax); got != 127*time.Second {
		t.Errorf("RetransmitTimeout(6, 1s) = %v, want 127s", got)
	}
	for _, bad := range []struct {
		r        int
		min, max time.Duration
	}{{-1, RTOMin, RTOMax}, {5, 0, RTOMax}, {5, RTOMax, RTOMin}} {
		if got := RetransmitTimeout(bad.r, bad.min, bad.max); got != 0 {
			t.Errorf("RetransmitTimeout(%d, %v, %v) = %v, want 0", bad.r, bad.min, bad.max, got)
		}
	}
}

func TestTimerSlack(t *testing.T) {
	ms := time.Millisecond
	// HZ=250: 4 ms jiffies; LVL_START(n) = 63<<(3(n-1)) jiffies.
	tests := []struct {
		d    time.Duration
		hz   int
		want time.Duration
	}{
		{204 * ms, 250, 4 * ms},                  // 51 j < 63: level 0, 1 j
		{248 * ms, 250, 4 * ms},                  // 62 j: still level 0
		{252 * ms, 250, 32 * ms},                 // 63 j: level 1, 8 j
		{1632 * ms, 250, 32 * ms},                // 408 j < 504: level 1
		{3264 * ms, 250, 256 * ms},               // 816 j < 4032: level 2, 64 j
		{13056 * ms, 250, 256 * ms},              // 3264 j < 4032
		{RTOMax, 250, 2048 * ms},                 // 30000 j < 32256: level 3, 512 j
		{75 * time.Second, 250, 2048 * ms},       // keepalive interval
		{DefaultKeepaliveTime, 250, 131072 * ms}, // 1.8M j: level 5, 32768 j
		{204 * ms, 1000, 8 * ms},                 // 204 j >= 63: level 1, 8 x 1 ms
		{0, 0, 4 * ms},                           // default HZ
	}
	for _, tt := range tests {
		if got := TimerSlack(tt.d, tt.hz); got != tt.want {
			t.Errorf("TimerSlack(%v, %d) = %v, want %v", tt.d, tt.hz, got, tt.want)
		}
	}
}

func TestProbeTimeout(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name       string
		srtt, rto  time.Duration
		packetsOut int
		want       time.Duration
	}{
		{"one packet, capped by rto", 4 * ms, 204 * ms, 1, 204 * ms}, // min(8+200, 204)
		{"one packet, rto larger", 4 * ms, 3 * time.Second, 1, 208 * ms},
		{"several packets", 10 * ms, 210 * ms, 3, 22 * ms}, // 2*10 + 2
		{"no rtt sample", 0, 3 * time.Second, 1, time.Second},
	}
	for _, tt := range tests {
		if got := ProbeTimeout(tt.srtt, tt.rto, tt.packetsOut); got != tt.want {
			t.Errorf("%s: ProbeTimeout = %v, want %v", tt.name, got, tt.want)
		}
	}
}
