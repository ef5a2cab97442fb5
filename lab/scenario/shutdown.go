package scenario

// shutdown — UNP 5.16, server host shut down.
//
// Property: `shutdown -h` makes init send SIGTERM to every process, wait a
// grace period, SIGKILL the rest and power off. The server's socket closes
// with FIN like a killed process's (5.12), and the client reads EOF: right
// after SIGTERM when the server exits or closes on it, only after the grace
// period when it ignores SIGTERM.

import (
	"context"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/vms"
)

var shutdown = Scenario{
	Name:     "shutdown",
	Summary:  "shutdown -h now run inside the server",
	Property: "init's SIGTERM (or, if ignored, SIGKILL after the grace period) closes the server's socket with FIN: the client reads EOF",
	Own:      []string{"server-sigterm"},
	Fault: func(ctx context.Context, r *Run) error {
		c, err := r.guest(ctx, lab.RoleServer)
		if err != nil {
			return err
		}
		srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
		err = r.markFault("shutdown", func() error {
			_, err := c.Output(ctx, "shutdown -h now")
			return err
		})
		r.dropConn(lab.RoleServer)
		if err != nil {
			// The shutdown may cut its own session; what counts is that
			// the domain goes off.
			r.log.Debug("shutdown command", "err", err)
		}
		wctx, cancel := context.WithTimeout(ctx, r.cfg.Lab.State.Grace+time.Minute)
		defer cancel()
		return r.cfg.Lab.Hypervisor().WaitState(wctx, srv.Domain, vms.StateShutoff)
	},
	Expect: func(r *Run) model.Expectation {
		grace := r.cfg.Lab.State.Grace
		e := model.Expectation{
			Errors: []string{model.EOF, model.ECONNRESET},
			Reason: "the server exits at SIGTERM and its FIN reaches the client at its next read",
			Detect: r.Opt.Interval / 2, Tol: model.Tolerance{Abs: r.Opt.Interval/2 + time.Second},
		}
		if r.Opt.ServerSigterm == "ignore" {
			e.Reason = "the server ignores SIGTERM, so only init's SIGKILL after the grace period closes its socket"
			e.Detect += grace
		}
		if r.Opt.Read == "event" {
			e.Errors = []string{model.EOF}
		}
		return e
	},
	Bound: func(r *Run) time.Duration { return r.cfg.Lab.State.Grace + time.Minute },
	Heal:  func(ctx context.Context, r *Run) error { return r.ensureServer(ctx) },
}
