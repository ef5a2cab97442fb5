package model

import (
	"fmt"
	"time"
)

// Keepalive is a socket's keepalive configuration (SO_KEEPALIVE,
// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT).
type Keepalive struct {
	// Enabled is SO_KEEPALIVE; Linux sockets start with it off.
	Enabled bool `json:"enabled"`
	// Idle is the silence before the first probe.
	Idle time.Duration `json:"idle_ns"`
	// Intvl is the time between probes.
	Intvl time.Duration `json:"intvl_ns"`
	// Probes is the number of unanswered probes that end the connection.
	Probes int `json:"probes"`
}

// LinuxKeepalive is the kernel's default configuration, switched on.
func LinuxKeepalive() Keepalive {
	return Keepalive{Enabled: true, Idle: DefaultKeepaliveTime, Intvl: DefaultKeepaliveIntvl, Probes: DefaultKeepaliveProbes}
}

// GoKeepalive is what a Go net.Dialer sets by default.
func GoKeepalive() Keepalive {
	return Keepalive{Enabled: true, Idle: GoKeepaliveIdle, Intvl: GoKeepaliveIntvl, Probes: GoKeepaliveProbes}
}

// KeepaliveDetect is the time from the last segment received to the
// keepalive abort of an idle connection: idle + intvl*cnt (7875 s by default).
func KeepaliveDetect(idle, intvl time.Duration, cnt int) time.Duration {
	return idle + intvl*time.Duration(max(cnt, 0))
}

// KeepaliveAbort is when tcp_keepalive_timer ends an idle connection to a
// silent peer, measured from the last segment received, and how many probes
// it sends first. Without a user timeout that is KeepaliveDetect. With
// TCP_USER_TIMEOUT the probe count is ignored: the timer aborts at the first
// firing where the time since the last receive is at least the user timeout
// and at least one probe is out, i.e. idle + j*intvl with j >= 1 the smallest
// such that idle + j*intvl >= userTimeout.
func KeepaliveAbort(k Keepalive, userTimeout time.Duration) (at time.Duration, probes int) {
	if userTimeout <= 0 {
		return KeepaliveDetect(k.Idle, k.Intvl, k.Probes), max(k.Probes, 0)
	}
	j := 1
	if rest := userTimeout - k.Idle; rest > 0 && k.Intvl > 0 {
		j = max(1, int((rest+k.Intvl-1)/k.Intvl))
	}
	return k.Idle + time.Duration(j)*k.Intvl, j
}

// Mechanism names what ends a connection to a silent peer.
type Mechanism string

const (
	// MechRetries2 is tcp_retries2 via tcp_write_timeout.
	MechRetries2 Mechanism = "tcp_retries2"
	// MechUserTimeout is TCP_USER_TIMEOUT replacing the tcp_retries2 bound.
	MechUserTimeout Mechanism = "tcp_user_timeout"
	// MechKeepalive is the keepalive timer of an idle connection.
	MechKeepalive Mechanism = "keepalive"
	// MechNone means nothing ends the connection while the client stays idle.
	MechNone Mechanism = "none"
)

// DeadPeer describes a client whose peer has gone silent.
type DeadPeer struct {
	// Unacked says whether the client has unacknowledged data in flight.
	Unacked bool `json:"unacked"`
	// Conn is the retransmission side; its UserTimeout also governs keepalive.
	Conn AbortInput `json:"conn"`
	// Keepalive is the client socket's keepalive configuration.
	Keepalive Keepalive `json:"keepalive"`
}

// Detection says which mechanism ends the connection and when.
type Detection struct {
	// Mechanism is what ends the connection.
	Mechanism Mechanism `json:"mechanism"`
	// At is the nominal detection time on the caller's axis (origin: the last
	// segment received from the peer); 0 with MechNone.
	At time.Duration `json:"at_ns,omitempty"`
	// Window bounds the detection on the caller's axis (zero with MechNone).
	Window Window `json:"window"`
	// Error is the errno name the application sees; empty with MechNone.
	Error string `json:"error,omitempty"`
	// Reason explains the choice in one line.
	Reason string `json:"reason"`
}

// DetectDeadPeer applies the rule "keepalive does nothing while data is
// unacknowledged": tcp_keepalive_timer only reschedules itself while
// packets are out or queued, so a writing client is ended by tcp_retries2 or
// TCP_USER_TIMEOUT (PredictAbort), and only an idle client by keepalive.
func DetectDeadPeer(p DeadPeer) (Detection, error) {
	if p.Unacked {
		a, err := PredictAbort(p.Conn)
		if err != nil {
			return Detection{}, fmt.Errorf("detect dead peer: %w", err)
		}
		m := MechRetries2
		if p.Conn.UserTimeout > 0 {
			m = MechUserTimeout
		}
		return Detection{Mechanism: m, At: a.Abort, Window: a.Window(), Error: a.Error,
			Reason: "unacked data, keepalive suspended; " + a.Reason}, nil
	}
	if !p.Keepalive.Enabled {
		return Detection{Mechanism: MechNone,
			Reason: "idle client without keepalive: nothing probes the peer until the client writes"}, nil
	}
	k := p.Keepalive
	if k.Idle <= 0 || k.Intvl <= 0 || k.Probes < 0 || p.Conn.UserTimeout < 0 || p.Conn.ClockUncertainty < 0 {
		return Detection{}, fmt.Errorf("detect dead peer: keepalive %+v, user timeout %v: %w", k, p.Conn.UserTimeout, ErrInvalidInput)
	}
	at, probes := KeepaliveAbort(k, p.Conn.UserTimeout)
	lat := p.Conn.Latency
	if lat == 0 {
		lat = DefaultTimerLatency
	}
	lat = max(lat, 0)
	slack := TimerSlack(k.Idle, p.Conn.HZ) + lat + time.Duration(probes)*(TimerSlack(k.Intvl, p.Conn.HZ)+lat)
	w := Window{Earliest: at, Latest: at + slack, Nominal: at, Slack: p.Conn.ClockUncertainty,
		Basis: "the keepalive timer's firings from the last receive, up to the per-timer allowance late"}
	rule := fmt.Sprintf("idle %s + %d x intvl %s", secs(k.Idle), probes, secs(k.Intvl))
	if p.Conn.UserTimeout > 0 {
		rule += fmt.Sprintf(", first firing past TCP_USER_TIMEOUT=%s with a probe out", secs(p.Conn.UserTimeout))
	}
	return Detection{Mechanism: MechKeepalive, At: at, Window: w, Error: ETIMEDOUT,
		Reason: fmt.Sprintf("idle client, keepalive: %s = %s after the last receive (timers may add %s)", rule, secs(at), secs(slack))}, nil
}

// Expectation turns the detection into the expectation a scenario checks;
// with MechNone it expects no error (NoError) and predicts no time.
func (d Detection) Expectation() Expectation {
	e := Expectation{Errors: []string{NoError}, Reason: d.Reason}
	if d.Error != "" {
		w := d.Window
		e.Errors, e.Window = []string{d.Error}, &w
	}
	return e
}
