// Command hostlab provisions a client and a server VM through libvirt and
// shows, on real kernels, what a client sees when the server's host dies.
//
// The binary is multi-call: inside a guest it is PID 1 (and shutdown,
// poweroff, reboot, halt), see provision/guestinit; run as
// hostlab-echo-server or hostlab-echo-client it is an echo program, see echo;
// as hostlab-clock or hostlab-sockstat a probe, see echo/probes; as
// hostlab-sysctl it applies and restores sysctls, see provision/guestsysctl;
// as hostlab-link it puts netem link conditions on the lab interface, see
// provision/guestlink.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/echo/probes"
	"github.com/hostlab/hostlab/provision/guestinit"
	"github.com/hostlab/hostlab/provision/guestlink"
	"github.com/hostlab/hostlab/provision/guestsysctl"
)

func main() {
	if guestinit.IsGuestInvocation(os.Args) {
		os.Exit(guestinit.Main(os.Args))
	}
	switch filepath.Base(os.Args[0]) {
	case echo.ServerName:
		os.Exit(echo.ServerMain(os.Args[1:]))
	case echo.ClientName:
		os.Exit(echo.ClientMain(os.Args[1:]))
	case probes.ClockName:
		os.Exit(probes.ClockMain(os.Args[1:]))
	case probes.SockstatName:
		os.Exit(probes.SockstatMain(os.Args[1:]))
	case probes.CaptureName:
		os.Exit(probes.CaptureMain(os.Args[1:]))
	case guestsysctl.Name:
		os.Exit(guestsysctl.Main(os.Args[1:]))
	case guestlink.Name:
		os.Exit(guestlink.Main(os.Args[1:]))
	}
	os.Exit(run(os.Args[1:]))
}

// exitError carries a command's exit status without printing anything more
// (e.g. the status of a command run in a guest).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run executes the CLI and returns the process exit status.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd()
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "hostlab: "+err.Error())
	if ctx.Err() != nil {
		return 130
	}
	return 1
}
