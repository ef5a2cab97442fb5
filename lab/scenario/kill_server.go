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

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
)

var killServer = Scenario{
	Name:     "kill-server",
	Summary:  "SIGKILL to the server's connection process",
	Property: "a killed server process closes with FIN; the client learns at its next read: EOF, or ECONNRESET after the RST its next write draws",
	Fault:    killChild("kill-server"),
	Expect: func(r *Run) model.Expectation {
		if r.Opt.Read == "event" {
			return model.Expectation{
				Errors: []string{model.EOF},
				Reason: "an event-driven client is always in read, so the FIN ends it at once",
				Detect: 100 * time.Millisecond, Tol: model.Tolerance{Abs: 400 * time.Millisecond},
			}
		}
		return model.Expectation{
			Errors: []string{model.EOF, model.ECONNRESET},
			Reason: "str_cli notices only when it next writes (RST) and reads: EOF, or ECONNRESET if the RST is processed first",
			Detect: r.Opt.Interval / 2, Tol: model.Tolerance{Abs: r.Opt.Interval/2 + 500*time.Millisecond},
		}
	},
	Bound: func(r *Run) time.Duration { return 30*time.Second + 2*r.Opt.Interval },
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
		return r.markFault(name, func() error {
			if _, err := c.Output(ctx, fmt.Sprintf("kill -9 %d", pid)); err != nil {
				return fmt.Errorf("kill server child %d: %w", pid, err)
			}
			return nil
		})
	}
}
