package scenario

// power-off — UNP 5.14, server host crashes.
//
// Property: a host that loses power sends nothing more. A client with
// unacknowledged data retransmits with exponential backoff until
// tcp_retries2 (or TCP_USER_TIMEOUT) ends the connection, at the first RTO
// expiry past the bound: ETIMEDOUT, or EHOSTUNREACH when neighbour
// resolution of the dead host failed first (a soft error reported at the
// abort). Keepalive does nothing while data is unacknowledged; an idle
// client learns only through keepalive, and without it never.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
)

var powerOff = Scenario{
	Name:     "power-off",
	Summary:  "hard power-off of the server VM (libvirt suspend, then destroy) while the client writes",
	Property: "retransmissions back off exponentially until the tcp_retries2 bound (or TCP_USER_TIMEOUT, or keepalive when idle) aborts: ETIMEDOUT or EHOSTUNREACH",
	Fault: func(ctx context.Context, r *Run) error {
		srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
		err := r.markFault("power-off", func() error { return r.cutPower(ctx, srv.Domain) })
		r.dropConn(lab.RoleServer)
		return err
	},
	Expect: deadPeerExpectation,
	Origin: lastReceived,
	Bound:  deadPeerBound,
	Heal:   func(ctx context.Context, r *Run) error { return r.ensureServer(ctx) },
}

// cutPower powers the server domain off with vms.CutPower — a pause, then a
// destroy — and pins the fault to the pause window: the guest sent its last
// frame within it. A failed pause fails the fault (nothing is destroyed);
// a failed destroy after the pause fails it too, the pin kept.
func (r *Run) cutPower(ctx context.Context, domain string) error {
	cut, err := r.cfg.Lab.Hypervisor().CutPower(ctx, domain)
	if cut.Paused.IsZero() {
		return err
	}
	data := map[string]any{"domain": domain, "pause_ms": float64(cut.Paused.Sub(cut.PauseStart)) / 1e6,
		"pause_returned_ns": cut.PauseReturned.UnixNano()}
	if !cut.Destroyed.IsZero() {
		data["destroyed_ns"] = cut.Destroyed.UnixNano()
	}
	r.pinFault("paused", cut.PauseStart, cut.Paused,
		"the pause before the destroy: from the pause call to its return (or the domain's suspended event, if that came first)", data)
	r.log.Info("power cut", "pause", cut.Paused.Sub(cut.PauseStart).Round(10*time.Microsecond),
		"pause_call", cut.PauseReturned.Sub(cut.PauseStart).Round(10*time.Microsecond),
		"destroy", cut.Destroyed.Sub(cut.PauseReturned).Round(time.Millisecond))
	return err
}

// deadPeerExpectation predicts how and when the client learns that its peer
// vanished, from the client's sysctls, socket options and TCP_INFO.
func deadPeerExpectation(r *Run) model.Expectation {
	in, _, err := r.deadPeer()
	if err != nil {
		return model.Expectation{Reason: "no prediction: " + err.Error()}
	}
	d, err := model.DetectDeadPeer(in)
	if err != nil {
		return model.Expectation{Reason: "no prediction: " + err.Error()}
	}
	if n := r.backoffReverts(); n > 0 && d.Mechanism != model.MechKeepalive {
		// The client's own neighbour entry for the dead server failed: its
		// kernel answered queued retransmissions with ICMP host unreachable,
		// a soft error, and each reverted a backoff step.
		return abortWithReverts(in.Conn, []string{model.EHOSTUNREACH}, fmt.Sprintf(
			"%s; the client's TCP_INFO shows %d backoff reverts (RFC 6069): its neighbour resolution of the dead server failed and its kernel stored ICMP host unreachable as a soft error, reported at the abort",
			d.Reason, n))
	}
	exp := d.Expectation() // Detect counts from the last segment received.
	if d.Mechanism != model.MechNone {
		exp.Errors = []string{model.ETIMEDOUT, model.EHOSTUNREACH}
		exp.Reason += "; EHOSTUNREACH instead when neighbour resolution failed first (soft error reported at the abort)"
	}
	return exp
}

// deadPeerBound watches until well past the predicted detection.
func deadPeerBound(r *Run) time.Duration {
	exp := deadPeerExpectation(r)
	if exp.Detect <= 0 {
		return 60 * time.Second
	}
	return exp.Detect + exp.Tol.Allowed(exp.Detect) + 30*time.Second
}

// lastReceived is the last segment the client received from the server
// before the fault: the client's last read, on the client's clock.
func lastReceived(r *Run) (time.Time, string) {
	_, origin, err := r.deadPeer()
	if err != nil {
		return time.Time{}, ""
	}
	return r.faultAt().Add(origin), "the client's last read from the server before the fault (client clock)"
}

// deadPeer builds the model's input; origin is the last segment received
// from the server, relative to the fault instant.
func (r *Run) deadPeer() (model.DeadPeer, time.Duration, error) {
	sys := r.sysctls[lab.RoleClient]
	retries2, err := strconv.Atoi(sys["net.ipv4.tcp_retries2"])
	if err != nil {
		return model.DeadPeer{}, 0, fmt.Errorf("client tcp_retries2 unknown")
	}
	clk, ok := r.clock[lab.RoleClient]
	if !ok || r.client == nil || r.faultStart.IsZero() {
		return model.DeadPeer{}, 0, fmt.Errorf("no client evidence yet")
	}
	fault := r.faultAt()
	evs := r.client.snapshot()
	var lastRecv, firstWrite time.Time
	var before *echo.TCPInfo
	var clockUnc time.Duration
	for _, e := range evs {
		at, unc := clk.HostTimeFromMono(e.MonoNS)
		clockUnc = unc
		switch {
		case at.Before(fault) && (e.Ev == "read" || e.Ev == "connect"):
			lastRecv = at
		case !at.Before(fault) && e.Ev == "write" && firstWrite.IsZero():
			firstWrite = at
		}
		if e.TCPInfo != nil && at.Before(fault) {
			before = e.TCPInfo
		}
	}
	if lastRecv.IsZero() || before == nil {
		return model.DeadPeer{}, 0, fmt.Errorf("no traffic before the fault")
	}
	rto := time.Duration(before.RTOus) * time.Microsecond
	srtt := time.Duration(before.RTTus) * time.Microsecond
	sent := firstWrite
	if sent.IsZero() {
		sent = fault // Not written yet: the earliest it can be.
	}
	ka := model.Keepalive{}
	if r.Opt.Keepalive != "" {
		ka, _ = ParseKeepalive(r.Opt.Keepalive)
	}
	p := model.DeadPeer{
		Unacked: !r.Opt.Idle,
		Conn: model.AbortInput{
			Retries2: retries2, UserTimeout: r.Opt.UserTimeout, RTO: rto,
			Sent: sent.Sub(lastRecv), Probe: model.ProbeTimeout(srtt, rto, 1), ClockUncertainty: clockUnc,
		},
		Keepalive: ka,
	}
	return p, lastRecv.Sub(fault), nil
}

// backoffReverts counts the times the client's TCP_INFO backoff went down
// after the fault while data was unacknowledged: ICMP unreachables reverting
// backoff steps (RFC 6069).
func (r *Run) backoffReverts() int {
	clk, ok := r.clock[lab.RoleClient]
	if !ok || r.client == nil || r.faultStart.IsZero() {
		return 0
	}
	n, prev := 0, -1
	for _, e := range r.client.snapshot() {
		if e.TCPInfo == nil || e.TCPInfo.Unacked == 0 {
			continue
		}
		if at, _ := clk.HostTimeFromMono(e.MonoNS); at.Before(r.faultStart) {
			continue
		}
		b := int(e.TCPInfo.Backoff)
		if prev >= 0 && b < prev {
			n++
		}
		prev = b
	}
	return n
}
