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
	"fmt"
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
	Expect: shutdownExpect,
	Bound:  func(ev *Evidence) time.Duration { return ev.Grace + time.Minute },
	Heal:   func(ctx context.Context, r *Run) error { return r.ensureServer(ctx) },
}

// shutdownExpect: the init's SIGTERM (the server closes or dies at once) or,
// when the server ignores it, the SIGKILL after the grace period closes the
// server's socket with FIN; the client learns of the FIN as in kill-server.
// The FIN's instant is checked against the init's own steps on the
// server's console.
func shutdownExpect(ev *Evidence, k Rules) Judgement {
	term, ok := ev.mark(markSigterm, 0)
	if !ok {
		return missing("the server's console shows no SIGTERM step on the host axis")
	}
	rtt := echoRTT(ev)
	var span Span
	if ev.Opt.ServerSigterm == "ignore" {
		kill, ok := ev.mark(markSigkill, 0)
		if !ok {
			return missing("the server ignores SIGTERM and its console shows no SIGKILL step")
		}
		span = Span{Lo: kill.At, Hi: kill.At.Add(rtt), Slack: kill.Uncert,
			Basis: fmt.Sprintf("the init's SIGKILL %.3f s after its SIGTERM (grace %s), plus the turnaround", kill.At.Sub(term.At).Seconds(), fmtSecs(ev.Grace))}
		if gone, ok := ev.mark(markExited, 0); ok && gone.At.After(kill.At) {
			// A killed task closes its sockets as it runs its exit, which a
			// loaded guest may schedule late; the init saw them all gone.
			span.Hi, span.Slack = gone.At.Add(rtt), max(kill.Uncert, gone.Uncert)
			span.Basis = fmt.Sprintf("from the init's SIGKILL %.3f s after its SIGTERM (grace %s) to its seeing every process gone %.3f s later, plus the turnaround",
				kill.At.Sub(term.At).Seconds(), fmtSecs(ev.Grace), gone.At.Sub(kill.At).Seconds())
		}
		j := finJudgement(ev, span)
		if g := kill.At.Sub(term.At); g < ev.Grace-kill.Uncert-term.Uncert {
			j.Checks = append(j.Checks, model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf("the init sent SIGKILL %s after SIGTERM, before its %s grace", fmtSecs(g), fmtSecs(ev.Grace))})
		}
		j.Exp.Reason = "the server ignores SIGTERM, so only init's SIGKILL after the grace period closes its socket; " + j.Exp.Reason
		return j
	}
	// The server closes (or dies) at SIGTERM: its FIN leaves before the
	// grace ends; how soon depends on the program, so this is a bound.
	span = Span{Lo: term.At, Hi: term.At.Add(ev.Grace + rtt), Slack: term.Uncert, Bound: true,
		Basis: fmt.Sprintf("from the init's SIGTERM to the end of its %s grace: the server exits or closes on SIGTERM", fmtSecs(ev.Grace))}
	j := finJudgement(ev, span)
	j.Exp.Reason = "the server exits or closes at SIGTERM; " + j.Exp.Reason
	return j
}
