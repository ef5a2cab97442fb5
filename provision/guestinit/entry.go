package guestinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PowerAction is what the machine does at the end of the shutdown sequence.
type PowerAction int

// The power actions, each requested from PID 1 by its busybox signal.
const (
	Halt     PowerAction = iota // SIGUSR1; reboot(2) LINUX_REBOOT_CMD_HALT
	PowerOff                    // SIGUSR2; reboot(2) LINUX_REBOOT_CMD_POWER_OFF
	Reboot                      // SIGTERM (or SIGINT); reboot(2) LINUX_REBOOT_CMD_RESTART
)

// String returns the command name of the action.
func (a PowerAction) String() string {
	switch a {
	case Halt:
		return "halt"
	case PowerOff:
		return "poweroff"
	case Reboot:
		return "reboot"
	}
	return "PowerAction(" + strconv.Itoa(int(a)) + ")"
}

// Signal returns the signal that asks PID 1 for the action.
func (a PowerAction) Signal() unix.Signal {
	switch a {
	case Halt:
		return unix.SIGUSR1
	case Reboot:
		return unix.SIGTERM
	}
	return unix.SIGUSR2
}

func (a PowerAction) rebootCmd() int {
	switch a {
	case Halt:
		return unix.LINUX_REBOOT_CMD_HALT
	case Reboot:
		return unix.LINUX_REBOOT_CMD_RESTART
	}
	return unix.LINUX_REBOOT_CMD_POWER_OFF
}

// PowerRequest is a parsed shutdown, poweroff, reboot or halt command line.
type PowerRequest struct {
	Action PowerAction
	Force  bool // -f: call reboot(2) at once, skipping the shutdown sequence
}

// ErrUsage is wrapped by ParsePowerCommand errors about bad arguments.
var ErrUsage = errors.New("usage")

// guestCommands are the argv[0] base names that run guest code.
var guestCommands = map[string]bool{"init": true, "shutdown": true, "poweroff": true, "reboot": true, "halt": true}

// IsGuestInvocation reports whether the process is a guest's PID 1 or was
// invoked as init, shutdown, poweroff, reboot or halt.
func IsGuestInvocation(args []string) bool {
	if os.Getpid() == 1 {
		return true
	}
	return len(args) > 0 && guestCommands[filepath.Base(args[0])]
}

// Main runs init as PID 1 (never returning), or else the power command named
// by args[0], and returns the process exit code.
func Main(args []string) int {
	if os.Getpid() == 1 {
		runInit()
		return 0 // not reached: runInit powers off or loops forever
	}
	name := "init"
	if len(args) > 0 {
		name = filepath.Base(args[0])
	}
	if name == "init" {
		fmt.Fprintln(os.Stderr, "init: not running as PID 1; use shutdown, poweroff, reboot or halt")
		return 1
	}
	req, err := ParsePowerCommand(name, args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	if err := requestPower(req); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// ParsePowerCommand parses the arguments (without argv[0]) of the shutdown,
// poweroff, reboot or halt command named name.
func ParsePowerCommand(name string, args []string) (PowerRequest, error) {
	switch name {
	case "shutdown":
		return parseShutdown(args)
	case "poweroff", "reboot", "halt":
		req := PowerRequest{Action: map[string]PowerAction{"poweroff": PowerOff, "reboot": Reboot, "halt": Halt}[name]}
		for i := 0; i < len(args); i++ {
			switch a := args[i]; {
			case a == "-f":
				req.Force = true
			case a == "-d" && i+1 < len(args):
				i++ // delay: ignored
			case strings.HasPrefix(a, "-d") && len(a) > 2:
			default:
				return PowerRequest{}, fmt.Errorf("%w: %s [-f] [-d DELAY] (unexpected %q)", ErrUsage, name, a)
			}
		}
		return req, nil
	}
	return PowerRequest{}, fmt.Errorf("%w: unknown command %q", ErrUsage, name)
}

func parseShutdown(args []string) (PowerRequest, error) {
	req := PowerRequest{Action: PowerOff}
	sawTime := false
	for _, a := range args {
		switch {
		case (a == "now" || a == "+0") && !sawTime:
			sawTime = true
		case len(a) > 1 && a[0] == '-':
			for _, c := range a[1:] {
				switch c {
				case 'h', 'P':
					req.Action = PowerOff
				case 'H':
					req.Action = Halt
				case 'r':
					req.Action = Reboot
				default:
					return PowerRequest{}, shutdownUsage(a)
				}
			}
		default:
			return PowerRequest{}, shutdownUsage(a)
		}
	}
	return req, nil
}

func shutdownUsage(arg string) error {
	return fmt.Errorf("%w: shutdown [-h|-P|-H|-r] [now|+0] (unexpected %q)", ErrUsage, arg)
}

// requestPower signals PID 1, or with Force syncs and calls reboot(2) itself.
func requestPower(req PowerRequest) error {
	if req.Force {
		unix.Sync()
		if err := unix.Reboot(req.Action.rebootCmd()); err != nil {
			return fmt.Errorf("immediate %s: %w", req.Action, err)
		}
		return nil
	}
	if err := unix.Kill(1, req.Action.Signal()); err != nil {
		return fmt.Errorf("signal init (%s) for %s: %w", req.Action.Signal(), req.Action, err)
	}
	return nil
}
