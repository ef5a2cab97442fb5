package model

import (
	"slices"
	"testing"
	"time"
)

func TestConnectTimeout(t *testing.T) {
	s := time.Second
	tests := []struct {
		retries, linear int
		want            time.Duration
	}{
		{6, 0, 127 * s}, // 1+2+4+8+16+32+64
		{6, 4, 131 * s}, // 1+1+1+1+1 + 2+4+8+16+32+64 (kernel >= 6.5)
		{0, 0, 1 * s},
		{3, 0, 15 * s}, // 1+2+4+8
		// Intervals 1,2,4,8,16,32,64, then 128 s capped to 120 s twice:
		// 127 + 120 + 120 = 367 s.
		{8, 0, 367 * s},
	}
	for _, tt := range tests {
		if got := ConnectTimeout(tt.retries, tt.linear); got != tt.want {
			t.Errorf("ConnectTimeout(%d, %d) = %v, want %v", tt.retries, tt.linear, got, tt.want)
		}
	}
}

func TestConnectSchedule(t *testing.T) {
	s := time.Second
	got, fail := ConnectSchedule(6, 4)
	// Kernel documentation: last retransmission at 67 s, failure at 131 s.
	want := []time.Duration{1 * s, 2 * s, 3 * s, 4 * s, 5 * s, 7 * s, 11 * s, 19 * s, 35 * s, 67 * s}
	if !slices.Equal(got, want) || fail != 131*s {
		t.Errorf("ConnectSchedule(6, 4) = %v, %v; want %v, 131s", got, fail, want)
	}
}
