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
		r.hostEvent("server_back", map[string]any{"ready_marker": lab.ReadyMarker})
		r.log.Info("server is back", "after", back.Sub(r.faultAt()).Round(10*time.Millisecond))
		return nil
	},
	Expect: func(r *Run) model.Expectation {
		e := model.Expectation{
			Errors: []string{model.ECONNRESET},
			Reason: "the rebooted host has no socket for the connection and resets the client's next segment",
		}
		if r.Opt.Idle && r.Opt.Keepalive == "" {
			e.Errors, e.Reason = []string{model.NoError}, "an idle client without keepalive sends nothing, so nothing tells it"
			return e
		}
		if rto := r.rtoAt(r.serverBack); rto > 0 {
			// The RST answers the next scheduled retransmission: within one
			// (backed-off) RTO of the host being back. The init's ready line
			// comes a little after the address is up, hence the slack.
			e.Detect, e.Tol = rto/2, model.Tolerance{Abs: rto/2 + 500*time.Millisecond}
			e.Reason += fmt.Sprintf(", at its next retransmission: within one RTO (%s) of the host being back", rto.Round(time.Millisecond))
		}
		return e
	},
	Origin: func(r *Run) (time.Time, string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.serverBack, "the server's init reporting ready after the reboot (host clock, ±20 ms polling)"
	},
	Bound: func(r *Run) time.Duration { return 2*time.Minute + r.Opt.Down },
	Heal:  func(ctx context.Context, r *Run) error { return r.ensureServer(ctx) },
}

// rtoAt is the client's RTO in the last TCP_INFO sample before t.
func (r *Run) rtoAt(t time.Time) time.Duration {
	clk, ok := r.clock[lab.RoleClient]
	if t.IsZero() || !ok || r.client == nil {
		return 0
	}
	var rto time.Duration
	for _, e := range r.client.snapshot() {
		if e.TCPInfo == nil {
			continue
		}
		if at, _ := clk.HostTimeFromMono(e.MonoNS); at.After(t) {
			break
		}
		rto = time.Duration(e.TCPInfo.RTOus) * time.Microsecond
	}
	return rto
}
