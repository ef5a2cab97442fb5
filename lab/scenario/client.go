package scenario

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/echo/classic"
	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/provision"
)

// clientBinary is the client program's path in the guest.
func (r *Run) clientBinary() string {
	switch r.Opt.Client {
	case ClientGo:
		return "hostlab-echo-client"
	case ClientClassic:
		return provision.GuestBinDir + "/" + classic.ClientBinary
	}
	return provision.GuestBinDir + "/" + filepath.Base(string(r.Opt.Client))
}

// deployClient uploads the classic or a user's client into the client guest.
func (r *Run) deployClient(ctx context.Context) error {
	local := string(r.Opt.Client)
	switch r.Opt.Client {
	case ClientGo:
		return nil
	case ClientClassic:
		out := filepath.Join(r.cfg.Lab.Home(), "cache", "classic")
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		_, cl, err := classic.Build(ctx, r.cfg.CC, out)
		if err != nil {
			return fmt.Errorf("build the classic client: %w", err)
		}
		local = cl
	}
	c, err := r.guest(ctx, lab.RoleClient)
	if err != nil {
		return err
	}
	if _, err := provision.Deploy(ctx, c, []provision.File{{Local: local, Remote: r.clientBinary(), Mode: 0o755}}); err != nil {
		return err
	}
	return nil
}

// clientArgs builds the client's command line.
func (r *Run) clientArgs() string {
	srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
	o := r.Opt
	if o.Client == ClientClassic {
		args := []string{r.clientBinary(), "--lines", "1000000", fmt.Sprintf("--interval-ms %d", o.Interval.Milliseconds())}
		if o.SigpipeIgnore {
			args = append(args, "--sigpipe=ignore")
		}
		if r.Scenario.ClientFlags != nil {
			args = append(args, r.Scenario.ClientFlags(true)...)
		}
		return "exec " + strings.Join(append(args, srv.LabIP(), fmt.Sprint(EchoPort)), " ")
	}
	args := []string{r.clientBinary(), "--connect", fmt.Sprintf("%s:%d", srv.LabIP(), EchoPort), "--read", o.Read, "--interval", o.Interval.String()}
	if o.Idle {
		args = append(args, "--idle")
	}
	if o.Keepalive != "" {
		args = append(args, "--keepalive", o.Keepalive)
	}
	if o.UserTimeout > 0 {
		args = append(args, "--user-timeout", o.UserTimeout.String())
	}
	if o.ReadTimeout > 0 {
		args = append(args, "--read-timeout", o.ReadTimeout.String(), "--exit-on-timeout")
	}
	if r.Scenario.ClientFlags != nil {
		args = append(args, r.Scenario.ClientFlags(false)...)
	}
	return "exec " + strings.Join(args, " ")
}

// startClient starts the client and waits until the connection carries
// traffic (or, idle, is established and accepted).
func (r *Run) startClient(ctx context.Context) error {
	c, err := r.guest(ctx, lab.RoleClient)
	if err != nil {
		return err
	}
	if r.client, err = startProc(ctx, c, r.Dir, "client", lab.RoleClient, r.clientArgs()); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	want := 2
	if r.Opt.Idle {
		want = 0
	}
	if err := r.client.waitFor(wctx, "connection and traffic", func(evs []echo.Event) bool {
		return countEv(evs, "connect") > 0 && countEv(evs, "read") >= want
	}); err != nil {
		return err
	}
	return r.server.waitFor(wctx, "accept", func(evs []echo.Event) bool {
		return countEv(evs, "child_ready") > 0
	})
}
