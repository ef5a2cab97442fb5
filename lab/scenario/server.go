package scenario

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab"
)

// EchoPort is the echo server's port, the seed's 9998.
const EchoPort = 9998

// startServer starts the echo server and the socket samplers.
func (r *Run) startServer(ctx context.Context) error {
	c, err := r.guest(ctx, lab.RoleServer)
	if err != nil {
		return err
	}
	cmd := fmt.Sprintf("exec hostlab-echo-server --listen :%d --mode fork --sigterm %s", EchoPort, r.Opt.ServerSigterm)
	if r.server, err = startProc(ctx, c, r.Dir, "server", lab.RoleServer, cmd); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.server.waitFor(wctx, "listen", func(evs []echo.Event) bool { return countEv(evs, "listen") > 0 }); err != nil {
		return err
	}
	for _, role := range lab.Roles {
		gc, err := r.guest(ctx, role)
		if err != nil {
			return err
		}
		p, err := startProc(ctx, gc, r.Dir, "sockstat-"+role, role, fmt.Sprintf("exec hostlab-sockstat --port %d", EchoPort))
		if err != nil {
			return err
		}
		r.sockstat[role] = p
	}
	return r.startCapture(ctx)
}

// serverChild is the pid of the server process serving the client.
func (r *Run) serverChild() (int, error) {
	for _, e := range r.server.snapshot() {
		if e.Ev == "accept" && e.ChildPID > 0 {
			return e.ChildPID, nil
		}
	}
	return 0, errors.New("the echo server logged no accepted connection")
}

// stopGuestProcs ends the run's remaining guest programs.
func (r *Run) stopGuestProcs() {
	r.client.stop()
	r.server.stop()
	r.capture.stop()
	for _, p := range r.sockstat {
		p.stop()
	}
}
