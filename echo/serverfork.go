package echo

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// forkChild serves conn in a re-executed copy of this program (fork mode), as
// the classic forking server does: the parent only accepts and reaps.
func (s *server) forkChild(conn net.Conn) {
	defer conn.Close()
	peer, local := conn.RemoteAddr().String(), conn.LocalAddr().String()
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		s.w.EmitErr("fork", 0, fmt.Errorf("accepted %T, not a TCP connection", conn))
		return
	}
	f, err := tc.File()
	if err != nil {
		s.w.EmitErr("fork", 0, fmt.Errorf("dup accepted socket: %w", err))
		return
	}
	defer f.Close()
	cmd := exec.Command("/proc/self/exe", "--child", "--sigterm", s.cfg.sigterm)
	cmd.Args[0] = ServerName
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	if err := cmd.Start(); err != nil {
		s.w.EmitErr("fork", 0, fmt.Errorf("start child: %w", err))
		return
	}
	pid := cmd.Process.Pid
	s.children[pid] = cmd.Process
	s.wg.Add(1)
	pidFile := s.writePidFile(conn.RemoteAddr(), pid)
	s.w.Emit(Event{Ev: "accept", ChildPID: pid, Peer: peer, Local: local})
	go s.reap(cmd, peer, pidFile)
}

// reap waits for a child and logs how it ended.
func (s *server) reap(cmd *exec.Cmd, peer, pidFile string) {
	defer s.wg.Done()
	err := cmd.Wait()
	pid := cmd.Process.Pid
	removeFile(pidFile)
	s.mu.Lock()
	delete(s.children, pid)
	s.mu.Unlock()
	e := Event{Ev: "child_exit", ChildPID: pid, Peer: peer}
	var ee *exec.ExitError
	switch {
	case err == nil:
		e.Status = intp(0)
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = signalName(ws.Signal())
		} else {
			e.Status = intp(ee.ExitCode())
		}
	default:
		e.Err = err.Error()
	}
	s.w.Emit(e)
}

// signalName returns the conventional name of sig, such as "SIGKILL".
func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	}
	return fmt.Sprintf("SIG%d", int(sig))
}

// childMain serves the connection inherited on fd 3 until EOF, then exits.
func childMain(c serverConfig) int {
	w := NewWriter(os.Stdout, "child")
	var term chan os.Signal
	switch c.sigterm {
	case "ignore":
		signal.Ignore(syscall.SIGTERM)
	case "close":
		term = make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
	}
	f := os.NewFile(3, "conn")
	conn, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		w.EmitErr("fileconn", 0, fmt.Errorf("adopt fd 3: %w", err))
		return ExitOther
	}
	// From here on the child's SIGTERM disposition is in force.
	w.Emit(Event{Ev: "child_ready", Peer: conn.RemoteAddr().String(), Action: c.sigterm})
	closing := make(chan struct{})
	isClosing := func() bool {
		select {
		case <-closing:
			return true
		default:
			return false
		}
	}
	if term != nil {
		go func() {
			<-term
			w.Emit(Event{Ev: "sigterm", Action: "close", Peer: conn.RemoteAddr().String()})
			close(closing)
			_ = conn.Close()
		}()
	}
	echoConn(w, conn, isClosing)
	return 0
}
