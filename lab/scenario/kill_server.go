package scenario

// kill-server — UNP 5.12, server process terminated.
//
// Property: SIGKILL to the process serving the connection makes its kernel
// close the socket with FIN. A client blocked elsewhere (str_cli in its sleep
// between lines) does not notice; its next write is accepted and answered by
// RST, and its read returns EOF (the FIN is queued first), or ECONNRESET if
// the RST was processed before the read. An event-driven client sees EOF as
// soon as the FIN arrives.

import (
	"context"
	"fmt"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab"
)

var killServer = Scenario{
	Name:     "kill-server",
	Summary:  "SIGKILL to the server's connection process",
	Property: "a killed server process closes with FIN; the client learns at its next read: EOF, or ECONNRESET after the RST its next write draws",
	Own:      []string{"sigpipe-ignore"},
	Fault:    killChild("kill-server"),
	Expect:   func(ev *Evidence, k Rules) Judgement { return finJudgement(ev, killFINSpan(ev)) },
	Bound:    func(ev *Evidence) time.Duration { return 30*time.Second + 2*ev.Opt.Interval },
}

// killChild is the fault of kill-server and sigpipe: SIGKILL to the server
// child serving the client's connection.
func killChild(name string) func(context.Context, *Run) error {
	return func(ctx context.Context, r *Run) error {
		pid, err := r.serverChild()
		if err != nil {
			return err
		}
		c, err := r.guest(ctx, lab.RoleServer)
		if err != nil {
			return err
		}
		if err := r.afterNextEcho(ctx); err != nil {
			return err
		}
		return r.markFault(name, func() error {
			if _, err := c.Output(ctx, fmt.Sprintf("kill -9 %d", pid)); err != nil {
				return fmt.Errorf("kill server child %d: %w", pid, err)
			}
			return nil
		})
	}
}

// afterNextEcho waits for the client's next echoed line, so a fault lands
// while str_cli sleeps before its next line — as in UNP, where the client
// sits in fgets when the server dies — and not between the two writes of a
// line or while the echo is in flight. An idle client has no lines to wait
// for.
func (r *Run) afterNextEcho(ctx context.Context) error {
	if r.Opt.Idle {
		return nil
	}
	n := countEv(r.client.snapshot(), "read")
	wctx, cancel := context.WithTimeout(ctx, 2*r.Opt.Interval+10*time.Second)
	defer cancel()
	return r.client.waitFor(wctx, "the next echo", func(evs []echo.Event) bool {
		return countEv(evs, "read") > n
	})
}
