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
	Expect: func(ev *Evidence, k Rules) Judgement {
		c, err := deadPeerConfig(ev)
		if err != nil {
			return missing(err.Error())
		}
		errs, why := unreachableErrors(ev)
		if !c.unacked {
			j := keepaliveExpect(ev, k, c)
			if j.Exp.Missing == "" && len(j.Exp.Errors) > 0 && j.Exp.Errors[0] != model.NoError {
				j.Exp.Errors, j.Exp.Reason = errs, j.Exp.Reason+"; "+why
			}
			return j
		}
		l, err := measureLadder(ev, c.ut, c.thin)
		if err != nil {
			return missing("retransmission ladder: " + err.Error())
		}
		// Each ICMP host unreachable the client's kernel processed reverts a
		// backoff step as its own neighbour failures do.
		l.Reverts = max(l.Reverts, icmpBefore(ev))
		return abortJudgement(ev, k, c, l, errs, why)
	},
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

// icmpBefore counts the ICMP host unreachables the client received after
// the fault and before it learnt.
func icmpBefore(ev *Evidence) int {
	until := ev.observation().At
	n := 0
	for _, ic := range ev.ICMP {
		if ic.Code == icmpHostUnreach && ic.At.After(ev.FaultStart) && (until.IsZero() || ic.At.Before(until)) {
			n++
		}
	}
	return n
}

// unreachableErrors reads the client's capture of the lab link: an ICMP host
// unreachable from the router before the abort makes EHOSTUNREACH the
// expected error; none means the router had not given up on the server's
// address yet, and the abort reports ETIMEDOUT.
func unreachableErrors(ev *Evidence) ([]string, string) {
	if ev.Wire == nil {
		return []string{model.EHOSTUNREACH, model.ETIMEDOUT}, "no capture to read (" + ev.WireErr + ")"
	}
	ob := ev.observation()
	n, first := 0, time.Time{}
	for _, ic := range ev.ICMP {
		if ic.Code == icmpHostUnreach && ic.At.After(ev.FaultStart) && (ob.At.IsZero() || ic.At.Before(ob.At)) {
			if n == 0 {
				first = ic.At
			}
			n++
		}
	}
	if n > 0 {
		return []string{model.EHOSTUNREACH}, fmt.Sprintf(
			"the router sent %d ICMP host unreachable (the first %.3f s after the fault, seen in the client's capture): a soft error, reported at the abort instead of ETIMEDOUT",
			n, first.Sub(ev.FaultAt).Seconds())
	}
	if ob.Error == "" {
		return []string{model.EHOSTUNREACH, model.ETIMEDOUT}, "no ICMP host unreachable has reached the client yet (the router still holds a neighbour entry for the server)"
	}
	return []string{model.ETIMEDOUT}, "no ICMP host unreachable reached the client before the abort: the router's neighbour entry for the server had not failed yet (it stays valid for base_reachable_time, then delay_first_probe_time and the probes), so nothing stored a soft error"
}
