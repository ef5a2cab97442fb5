package scenario

// crash-reboot — UNP 5.15, server host crashes and reboots.
//
// Property: a host that crashes and comes back has no state for the old
// connection. The client keeps retransmitting into the void while the host
// is down; the first of its segments to reach the rebooted host is answered
// by RST, and the client gets ECONNRESET — up to one RTO after the host is
// back, since the RST answers the next scheduled retransmission.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
)

var crashReboot = Scenario{
	Name:     "crash-reboot",
	Summary:  "hard reset of the server VM (or power-off, wait, start with --reboot power-cycle)",
	Property: "the rebooted host answers the client's next segment with RST: ECONNRESET",
	Own:      []string{"reboot", "down"},
	Defaults: func(o *Options) {
		if o.Reboot == "" {
			o.Reboot = "reset"
		}
		if o.Down == 0 {
			o.Down = 5 * time.Second
		}
	},
	Fault: func(ctx context.Context, r *Run) error {
		srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
		hv := r.cfg.Lab.Hypervisor()
		n := readyCount(srv.Console)
		err := r.markFault("crash-reboot/"+r.Opt.Reboot, func() error {
			if r.Opt.Reboot == "power-cycle" {
				if err := r.cutPower(ctx, srv.Domain); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(r.Opt.Down):
				}
				r.flushCaptures("before the server's QEMU starts") // It truncates the server's capture.
				return hv.Start(ctx, srv.Domain)
			}
			return hv.Reset(ctx, srv.Domain)
		})
		r.dropConn(lab.RoleServer)
		if err != nil {
			return err
		}
		back, err := r.waitServerBack(ctx, n)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.serverBack = back
		r.mu.Unlock()
		r.hostEventAt(evServerBack, back, map[string]any{"ready_marker": lab.ReadyMarker})
		r.log.Info("server is back", "after", back.Sub(r.faultAt()).Round(10*time.Millisecond))
		return nil
	},
	Expect: crashRebootExpect,
	Bound:  func(ev *Evidence) time.Duration { return 2*time.Minute + ev.Opt.Down },
	Heal:   func(ctx context.Context, r *Run) error { return r.ensureServer(ctx) },
}

// crashRebootExpect: the rebooted host has no socket for the connection and
// resets the first of the client's segments that reaches it once its lab
// link is up: the client's next scheduled retransmission (or keepalive
// probe) after that instant.
func crashRebootExpect(ev *Evidence, k Rules) Judgement {
	if ev.Opt.Idle {
		if c, err := deadPeerConfig(ev); err == nil && !c.keepalive.Enabled {
			return Judgement{Exp: model.Expectation{Errors: []string{model.NoError},
				Reason: "an idle client without keepalive sends nothing, so nothing tells it"}}
		}
	}
	up, ok := ev.mark(markLinkUp, 1)
	if !ok {
		return missing("the rebooted server's console shows no lab link coming up on the host axis")
	}
	if ev.Wire == nil {
		return missing("no capture of the lab link (" + ev.WireErr + ")")
	}
	sent := append(append([]time.Time(nil), ev.Wire.Retrans...), ev.Wire.Probes...)
	slices.SortFunc(sent, func(a, b time.Time) int { return a.Compare(b) })
	after := slices.ContainsFunc(sent, func(t time.Time) bool { return !t.Before(up.At.Add(-up.Uncert)) })
	if ob := ev.observation(); !after && ob.Error != "" && ob.Error != model.ECONNRESET {
		// The client gave up before the server was back: the dead-peer
		// rules decide, as for power-off.
		j := deadPeerExpect(ev, k)
		j.Exp.Reason = fmt.Sprintf("the client's retransmissions ran out before the rebooted server's link came up (%.3f s after the fault), so nothing answered them; %s",
			up.At.Sub(ev.FaultAt).Seconds(), j.Exp.Reason)
		return j
	}
	span, err := k.Reset(ResetCase{Up: up.At, UpUncert: up.Uncert, Retrans: sent, RST: ev.Wire.RST})
	if err != nil {
		return missing("reset window: " + err.Error())
	}
	kend := kernelEnd(ev)
	if kend == nil {
		span = withReaction(ev, span)
	}
	return Judgement{Kernel: kend, Exp: model.Expectation{Errors: []string{model.ECONNRESET}, Window: span.window(ev.FaultAt),
		Reason: fmt.Sprintf("the rebooted host (lab link up %.3f s after the fault) has no socket for the connection and resets the client's next segment",
			up.At.Sub(ev.FaultAt).Seconds())}}
}
