package scenario

// unreachable — UNP 5.14, server host crashed behind a router.
//
// Property: with the server powered off behind a router, the router's ARP
// for it fails and it answers the client's retransmissions with ICMP host
// unreachable. TCP treats that as a soft error: the connection is not
// dropped, each ICMP reverts one backoff step (RFC 6069), and the abort
// still comes at the tcp_retries2 time bound — reporting EHOSTUNREACH
// instead of ETIMEDOUT. A new connect to the dead host fails fast with
// EHOSTUNREACH.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
)

var unreachable = Scenario{
	Name:     "unreachable",
	Summary:  "hard power-off of the server VM behind a router VM (routed lab)",
	Property: "the router's ICMP host unreachable is a soft error reported at the tcp_retries2 abort: EHOSTUNREACH; a new connect fails fast",
	Routed:   true,
	Fault:    powerOff.Fault,
	Expect: func(r *Run) model.Expectation {
		errs, why := r.unreachableErrors()
		p, _, err := r.deadPeer()
		if err != nil || r.Opt.Idle {
			return model.Expectation{Errors: errs, Reason: why}
		}
		if len(errs) == 1 {
			p.Conn.SoftError = errs[0]
		}
		return abortWithReverts(p.Conn, errs, why)
	},
	Origin:   lastReceived,
	Bound:    deadPeerBound,
	Followup: connectAgain,
	Heal:     func(ctx context.Context, r *Run) error { return r.ensureServer(ctx) },
}

// connectAgain tries a new connection to the dead server and reports how
// it failed and how long that took.
func connectAgain(ctx context.Context, r *Run) string {
	srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
	cmd := fmt.Sprintf("hostlab-echo-client --connect %s:%d --count 1 --max-time 60s --sample 0 | grep -E '\"ev\":\"(error|connect|exit)\"'", srv.LabIP(), EchoPort)
	t0 := time.Now()
	out, err := r.sh(ctx, lab.RoleClient, cmd)
	took := time.Since(t0)
	for _, name := range []string{model.EHOSTUNREACH, model.ETIMEDOUT, model.ECONNREFUSED, model.ENETUNREACH} {
		if strings.Contains(out, `"errno":"`+name+`"`) {
			return fmt.Sprintf("a new connect failed with %s after %.2f s", name, took.Seconds())
		}
	}
	if err != nil {
		return fmt.Sprintf("a new connect ended after %.2f s: %v", took.Seconds(), err)
	}
	return fmt.Sprintf("a new connect ended after %.2f s: %s", took.Seconds(), strings.TrimSpace(out))
}

// unreachableErrors reads this run's capture of the client's lab link: an ICMP host
// unreachable from the router before the abort makes EHOSTUNREACH the
// expected error; none means the router had not given up on the server's
// address yet, and the abort reports ETIMEDOUT.
func (r *Run) unreachableErrors() ([]string, string) {
	if r.faultStart.IsZero() {
		return []string{model.EHOSTUNREACH, model.ETIMEDOUT}, "no capture to read"
	}
	frames, err := r.capturedFrames(lab.RoleClient, 0)
	if err != nil {
		return []string{model.EHOSTUNREACH, model.ETIMEDOUT}, "the client's capture is unreadable: " + err.Error()
	}
	icmps := icmpUnreachable(frames)
	ob := r.observation()
	until := ob.At
	if until.IsZero() {
		until = time.Now()
	}
	n, first := 0, time.Time{}
	for _, ic := range icmps {
		if ic.Code == icmpHostUnreach && ic.At.After(r.faultStart) && ic.At.Before(until) {
			if n == 0 {
				first = ic.At
			}
			n++
		}
	}
	if n > 0 {
		return []string{model.EHOSTUNREACH}, fmt.Sprintf(
			"the router sent %d ICMP host unreachable (the first %.3f s after the fault, seen in the client's capture): a soft error, reported at the abort instead of ETIMEDOUT",
			n, first.Sub(r.faultAt()).Seconds())
	}
	if ob.Error == "" {
		return []string{model.EHOSTUNREACH, model.ETIMEDOUT}, "no ICMP host unreachable has reached the client yet (the router still holds a neighbour entry for the server)"
	}
	return []string{model.ETIMEDOUT}, "no ICMP host unreachable reached the client before the abort: the router's neighbour entry for the server had not failed yet (it stays valid for base_reachable_time, then delay_first_probe_time and the probes), so nothing stored a soft error"
}

// abortWithReverts expects the abort at the bound when ICMP unreachables
// revert backoff steps (RFC 6069): the abort is still the first timer expiry
// at or past the bound, but each ICMP re-arms the timer, so it can come up to
// the largest in-force RTO of the plain ladder after the bound, plus the
// timers' slack.
func abortWithReverts(in model.AbortInput, errs []string, why string) model.Expectation {
	p, err := model.PredictAbort(in)
	if err != nil {
		return model.Expectation{Errors: errs, Reason: why + "; no timing prediction: " + err.Error()}
	}
	early := p.RetransStamp + p.Bound
	var maxRTO time.Duration
	for _, tx := range p.Schedule {
		if tx.Kind == "retransmit" && tx.RTO > maxRTO {
			maxRTO = tx.RTO
		}
	}
	late := early + maxRTO + (p.Latest - p.Abort)
	return model.Expectation{
		Errors: errs,
		Reason: fmt.Sprintf("%s; the abort is the first expiry past the bound (%.3f s), at most one in-force RTO (<= %.3f s) later since ICMP reverts move the expiries",
			why, early.Seconds(), maxRTO.Seconds()),
		Detect: (early + late) / 2, Tol: model.Tolerance{Abs: (late-early)/2 + in.ClockUncertainty},
	}
}
