package scenario

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/clocksync"
	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/vms"
)

// guest returns the SSH connection to a role, dialling it if needed.
func (r *Run) guest(ctx context.Context, role string) (*provision.Client, error) {
	if c, ok := r.conn[role]; ok {
		return c, nil
	}
	c, err := r.cfg.Lab.Dial(ctx, role)
	if err != nil {
		return nil, err
	}
	r.conn[role] = c
	return c, nil
}

// dropConn makes the next guest call dial anew (the guest rebooted or went
// away). The old connection stays open until the run ends: closing it would
// make the guest's sshd hang up the processes it started, which would close
// the server's socket for a reason that is not the fault.
func (r *Run) dropConn(role string) {
	if c, ok := r.conn[role]; ok {
		r.stale = append(r.stale, c)
		delete(r.conn, role)
	}
}

func (r *Run) closeConns() {
	for role := range r.conn {
		r.dropConn(role)
	}
	for _, c := range r.stale {
		c.Close()
	}
	r.stale = nil
}

// sh runs a command in a guest and returns its output; non-zero is an error.
func (r *Run) sh(ctx context.Context, role, cmd string) (string, error) {
	c, err := r.guest(ctx, role)
	if err != nil {
		return "", err
	}
	out, err := c.Output(ctx, cmd)
	return string(out), err
}

// ensureServer starts the server domain if it is off and waits for SSH.
func (r *Run) ensureServer(ctx context.Context) error {
	srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
	hv := r.cfg.Lab.Hypervisor()
	st, err := hv.State(ctx, srv.Domain)
	if err != nil {
		return err
	}
	if st == vms.StateRunning {
		return nil
	}
	if st != vms.StateShutoff {
		return fmt.Errorf("server domain %s is %s: run hostlab down and up", srv.Domain, st)
	}
	r.log.Info("server is off: starting it")
	n := readyCount(srv.Console)
	r.flushCaptures("before the server's QEMU starts") // It truncates the server's capture.
	if err := hv.Start(ctx, srv.Domain); err != nil {
		return err
	}
	_, err = r.waitServerBack(ctx, n)
	return err
}

// waitServerBack waits until the server's console shows more than n ready
// lines, then until it answers SSH; it returns when the init was ready.
func (r *Run) waitServerBack(ctx context.Context, n int) (time.Time, error) {
	srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for readyCount(srv.Console) <= n {
		select {
		case <-wctx.Done():
			return time.Time{}, fmt.Errorf("server did not boot again: %w", wctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	back := time.Now()
	r.dropConn(lab.RoleServer)
	c, err := r.guest(wctx, lab.RoleServer)
	if err != nil {
		return back, err
	}
	// A new boot has a new monotonic clock: fit it, so the rebooted
	// server's console steps can be placed on the host axis.
	if clk, _, err := clocksync.Estimate(wctx, c, 20); err == nil {
		r.mu.Lock()
		r.rebootClock = &clk
		r.mu.Unlock()
	} else {
		r.note("clock of the rebooted server: " + err.Error())
	}
	return back, nil
}

// readyCount counts the init's ready lines in a console log.
func readyCount(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte(lab.ReadyMarker))
}
