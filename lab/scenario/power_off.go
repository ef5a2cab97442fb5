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
	"errors"
	"fmt"
	"time"

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
	Expect: deadPeerExpect,
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

// deadPeerConf is what decides how a client learns of a silent peer: the
// client's sysctls and its socket's options as read back after connect.
type deadPeerConf struct {
	retries2  int
	ut        time.Duration
	keepalive model.Keepalive
	thin      bool
	unacked   bool
	hz        int
}

// deadPeerConfig reads the model's inputs from the evidence.
func deadPeerConfig(ev *Evidence) (deadPeerConf, error) {
	var c deadPeerConf
	var ok bool
	if c.retries2, ok = ev.sysctlInt(lab.RoleClient, "net.ipv4.tcp_retries2"); !ok {
		return c, fmt.Errorf("the client's tcp_retries2 was not read back")
	}
	con, ok := ev.connectEvent()
	if !ok || con.Sockopts == nil {
		return c, fmt.Errorf("the client's socket options were not read back after connect")
	}
	so := con.Sockopts
	c.ut = time.Duration(so.UserTimeoutMS) * time.Millisecond
	c.keepalive = model.Keepalive{Enabled: so.Keepalive, Idle: time.Duration(so.KeepIdleS) * time.Second,
		Intvl: time.Duration(so.KeepIntvlS) * time.Second, Probes: so.KeepCnt}
	thin, _ := ev.sysctlInt(lab.RoleClient, "net.ipv4.tcp_thin_linear_timeouts")
	c.thin = thin == 1 // One line at a time: always a thin stream.
	c.unacked = !ev.Opt.Idle
	c.hz = model.DefaultHZ
	return c, nil
}

// deadPeerExpect applies the rules to a client whose peer went silent: a
// writing client is ended by the retransmission bound, an idle one only by
// keepalive, and without keepalive never.
func deadPeerExpect(ev *Evidence, k Rules) Judgement {
	c, err := deadPeerConfig(ev)
	if err != nil {
		return missing(err.Error())
	}
	if !c.unacked {
		return keepaliveExpect(ev, k, c)
	}
	l, err := measureLadder(ev, c.ut, c.thin)
	if err != nil {
		return missing("retransmission ladder: " + err.Error())
	}
	return abortJudgement(ev, k, c, l, nil, "")
}

// abortJudgement applies the abort rule to a measured ladder. errs, when
// set, are the errors the evidence allows (unreachable reads them from the
// capture), why says why.
func abortJudgement(ev *Evidence, k Rules, c deadPeerConf, l *Ladder, errs []string, why string) Judgement {
	ac := AbortCase{Ladder: l, Retries2: c.retries2, UserTimeout: c.ut, Thin: c.thin, HZ: c.hz}
	_, from := boundOf(ac)
	reason := "unacked data, keepalive suspended; " + from
	if errs == nil {
		errs = []string{model.ETIMEDOUT, model.EHOSTUNREACH}
		reason += "; ETIMEDOUT, or EHOSTUNREACH when neighbour resolution failed first (a soft error reported at the abort)"
		if l.Reverts > 0 {
			errs = []string{model.EHOSTUNREACH}
			reason += fmt.Sprintf("; the client's TCP_INFO shows %d backoff reverts (RFC 6069): its neighbour resolution of the dead server failed and its kernel stored ICMP host unreachable as the soft error", l.Reverts)
		}
	} else {
		reason += "; " + why
	}
	j := Judgement{Ladder: l, Late: l.Late, Checks: []model.Result{countCheck(ac)}}
	span, err := k.Abort(ac)
	switch {
	case errors.Is(err, errContradicted):
		j.Exp = model.Expectation{Errors: errs, Reason: reason}
		j.Checks = append(j.Checks, model.Result{Verdict: model.Unexpected, Why: err.Error()})
		return j
	case err != nil:
		j.Exp = model.Expectation{Missing: "abort window: " + err.Error()}
		return j
	}
	j.Exp = model.Expectation{Errors: errs, Reason: reason, Window: span.window(ev.FaultAt)}
	if j.Kernel = kernelEnd(ev); j.Kernel == nil {
		j.Exp.Window = withReaction(ev, span).window(ev.FaultAt)
	}
	return j
}

// keepaliveExpect: an idle client learns of a silent peer only through
// keepalive (ETIMEDOUT at the firing after the last probe), and without
// keepalive not at all.
func keepaliveExpect(ev *Evidence, k Rules, c deadPeerConf) Judgement {
	if !c.keepalive.Enabled {
		return Judgement{Exp: model.Expectation{Errors: []string{model.NoError},
			Reason: "idle client without keepalive (SO_KEEPALIVE off, read back): nothing probes the peer until the client writes"}}
	}
	if ev.Wire == nil {
		return missing("keepalive: no capture of the lab link (" + ev.WireErr + ")")
	}
	kc := KeepaliveCase{LastRecv: ev.Wire.LastFromServer, Probes: ev.Wire.Probes, Keepalive: c.keepalive, UserTimeout: c.ut, HZ: c.hz}
	j := Judgement{Late: keepaliveLate(kc)}
	_, probes := model.KeepaliveAbort(c.keepalive, c.ut)
	cnt := model.Result{Verdict: model.Expected, Why: fmt.Sprintf("%d keepalive probes on the wire, as the rule has", len(kc.Probes))}
	if len(kc.Probes) != probes {
		cnt = model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf("%d keepalive probes on the wire; the keepalive rule sends %d", len(kc.Probes), probes)}
	}
	j.Checks = []model.Result{cnt}
	span, err := k.Keepalive(kc)
	if err != nil {
		j.Exp = model.Expectation{Missing: "keepalive window: " + err.Error()}
		return j
	}
	ka := c.keepalive
	reason := fmt.Sprintf("idle client, keepalive %s,%s,%d (read back from the socket): ETIMEDOUT when the probes go unanswered, or EHOSTUNREACH as a stored soft error",
		fmtSecs(ka.Idle), fmtSecs(ka.Intvl), ka.Probes)
	if c.ut > 0 {
		reason += fmt.Sprintf("; TCP_USER_TIMEOUT %s replaces the probe count", fmtSecs(c.ut))
	}
	if asked, err := ParseKeepalive(ev.Opt.Keepalive); err == nil && ev.Opt.Keepalive != "" &&
		(asked.Idle != ka.Idle || asked.Intvl != ka.Intvl || asked.Probes != ka.Probes) {
		reason += fmt.Sprintf("; asked for %s, the socket holds %s,%s,%d (the kernel takes whole seconds)",
			ev.Opt.Keepalive, fmtSecs(ka.Idle), fmtSecs(ka.Intvl), ka.Probes)
	}
	j.Exp = model.Expectation{Errors: []string{model.ETIMEDOUT, model.EHOSTUNREACH}, Reason: reason, Window: span.window(ev.FaultAt)}
	if j.Kernel = kernelEnd(ev); j.Kernel == nil {
		j.Exp.Window = withReaction(ev, span).window(ev.FaultAt)
	}
	return j
}

// deadPeerBound watches until well past the latest abort the plain model
// allows (from the TCP_INFO in force at the fault), plus a minute.
func deadPeerBound(ev *Evidence) time.Duration {
	c, err := deadPeerConfig(ev)
	ti := lastTCPInfoBefore(ev.Client, ev.FaultStart)
	if err != nil || ti == nil {
		return 2 * time.Minute
	}
	if !c.unacked {
		if !c.keepalive.Enabled {
			return time.Minute
		}
		at, _ := model.KeepaliveAbort(c.keepalive, c.ut)
		return at + time.Minute
	}
	rto := time.Duration(ti.RTOus) * time.Microsecond
	p, err := model.PredictAbort(model.AbortInput{Retries2: c.retries2, UserTimeout: c.ut, RTO: rto,
		Probe: model.ProbeTimeout(time.Duration(ti.RTTus)*time.Microsecond, rto, 1), ThinLinear: c.thin})
	if err != nil {
		return 2 * time.Minute
	}
	b := p.Latest + time.Minute
	if backoffReverts(ev) > 0 {
		// Reverts can delay the abort by up to an in-force RTO.
		var maxRTO time.Duration
		for _, tx := range p.Schedule {
			maxRTO = max(maxRTO, tx.RTO)
		}
		b += maxRTO
	}
	return b
}

// backoffReverts counts the times the client's TCP_INFO backoff went down
// after the fault while data was unacknowledged.
func backoffReverts(ev *Evidence) int {
	n, prev := 0, -1
	for _, e := range ev.Client {
		if e.TCPInfo == nil || e.TCPInfo.Unacked == 0 || e.At.Before(ev.FaultStart) {
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
