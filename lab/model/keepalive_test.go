package model

import (
	"testing"
	"time"
)

func TestKeepaliveDetect(t *testing.T) {
	s := time.Second
	tests := []struct {
		idle, intvl time.Duration
		cnt         int
		want        time.Duration
	}{
		{DefaultKeepaliveTime, DefaultKeepaliveIntvl, DefaultKeepaliveProbes, 7875 * s}, // 7200 + 9*75
		{GoKeepaliveIdle, GoKeepaliveIntvl, GoKeepaliveProbes, 150 * s},                 // 15 + 9*15
		{10 * s, 5 * s, 0, 10 * s},
	}
	for _, tt := range tests {
		if got := KeepaliveDetect(tt.idle, tt.intvl, tt.cnt); got != tt.want {
			t.Errorf("KeepaliveDetect(%v, %v, %d) = %v, want %v", tt.idle, tt.intvl, tt.cnt, got, tt.want)
		}
	}
}

func TestKeepaliveAbortUserTimeout(t *testing.T) {
	s := time.Second
	k := GoKeepalive() // 15 s idle, 15 s interval, 9 probes
	tests := []struct {
		ut     time.Duration
		at     time.Duration
		probes int
	}{
		{0, 150 * s, 9},        // no user timeout: 15 + 9*15
		{40 * s, 45 * s, 2},    // 15 + j*15 >= 40 -> j = ceil(25/15) = 2
		{45 * s, 45 * s, 2},    // exactly at a firing: 15 + 2*15 = 45
		{10 * s, 30 * s, 1},    // below idle: one probe must be out first
		{600 * s, 600 * s, 39}, // count ignored: 15 + 39*15 = 600
	}
	for _, tt := range tests {
		at, probes := KeepaliveAbort(k, tt.ut)
		if at != tt.at || probes != tt.probes {
			t.Errorf("KeepaliveAbort(ut=%v) = %v, %d; want %v, %d", tt.ut, at, probes, tt.at, tt.probes)
		}
	}
}

func TestDetectDeadPeer(t *testing.T) {
	conn := AbortInput{Retries2: 5, RTO: 204 * ms, Sent: time.Second}
	tests := []struct {
		name string
		p    DeadPeer
		mech Mechanism
		at   time.Duration
		err  string
	}{
		// Keepalive is on but irrelevant: 1.0 + 0.204 + 12.648 = 13.852 s.
		{"writing client", DeadPeer{Unacked: true, Conn: conn, Keepalive: GoKeepalive()}, MechRetries2, 13852 * ms, ETIMEDOUT},
		// 1.0 + 0.204 = 1.204 s retrans_stamp, + 5 s user timeout.
		{"writing client with user timeout", DeadPeer{Unacked: true, Conn: AbortInput{Retries2: 15, RTO: 204 * ms, Sent: time.Second, UserTimeout: 5 * time.Second}},
			MechUserTimeout, 6204 * ms, ETIMEDOUT},
		{"idle client, Go keepalive", DeadPeer{Conn: conn, Keepalive: GoKeepalive()}, MechKeepalive, 150 * time.Second, ETIMEDOUT},
		{"idle client, Linux keepalive", DeadPeer{Conn: conn, Keepalive: LinuxKeepalive()}, MechKeepalive, 7875 * time.Second, ETIMEDOUT},
		{"idle client, keepalive and user timeout", DeadPeer{Conn: AbortInput{UserTimeout: 40 * time.Second}, Keepalive: GoKeepalive()},
			MechKeepalive, 45 * time.Second, ETIMEDOUT},
		{"idle client, no keepalive", DeadPeer{Conn: conn}, MechNone, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DetectDeadPeer(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if d.Mechanism != tt.mech || d.At != tt.at || d.Error != tt.err {
				t.Errorf("got %s at %v (%q), want %s at %v (%q)", d.Mechanism, d.At, d.Error, tt.mech, tt.at, tt.err)
			}
			if d.Reason == "" {
				t.Error("empty reason")
			}
		})
	}
}

func TestDetectDeadPeerKeepaliveTolerance(t *testing.T) {
	// Go keepalive, HZ=250: idle 15 s -> 256 ms + 20 ms; 9 probes at 15 s
	// intervals -> 9 x 276 ms; 10 x 276 ms = 2.76 s.
	d, err := DetectDeadPeer(DeadPeer{Keepalive: GoKeepalive()})
	if err != nil {
		t.Fatal(err)
	}
	if d.Window.Earliest != d.At || d.Window.Latest-d.At != 2760*ms {
		t.Errorf("window %v, want %v..%v+2.76s", d.Window, d.At, d.At)
	}
	if _, err := DetectDeadPeer(DeadPeer{Keepalive: Keepalive{Enabled: true}}); err == nil {
		t.Error("zero keepalive timers accepted")
	}
}
