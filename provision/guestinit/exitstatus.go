package guestinit

import (
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// sendExit sends exit-signal for a process killed by a signal, else
// exit-status.
func sendExit(ch ssh.Channel, ws unix.WaitStatus) {
	if ws.Signaled() {
		msg := struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{signalName(ws.Signal()), ws.CoreDump(), "", ""}
		_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(&msg))
		return
	}
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(&struct{ Status uint32 }{uint32(ws.ExitStatus())}))
}

// signalName returns the SSH name of a signal: "KILL" for SIGKILL.
func signalName(sig unix.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return strings.TrimPrefix(n, "SIG")
	}
	return fmt.Sprintf("%d", int(sig))
}

// describeStatus renders a wait status as "exit 3" or "signal killed".
func describeStatus(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", ws.ExitStatus())
}
