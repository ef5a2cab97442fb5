package echo_test

import (
	"bufio"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/echo/internal/proctest"
)

// killChild kills the fork-mode child serving the connection with SIGKILL,
// as in UNP 5.12, and waits until the parent reaped it.
func killChild(t *testing.T, srv *proctest.Proc, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill child %d: %v", pid, err)
	}
	e := srv.WaitFor(t, wait, "child_exit", proctest.Ev("child_exit"))
	if e.ChildPID != pid || e.Signal != "SIGKILL" {
		t.Errorf("child_exit %+v, want pid %d killed by SIGKILL", e, pid)
	}
}

func TestKillChildBlockingClient(t *testing.T) {
	srv, addr := startServer(t, "--mode", "fork")
	cl := startClient(t, addr, "--count", "5", "--interval", "300ms")
	acc := srv.WaitFor(t, wait, "accept", proctest.Ev("accept"))
	cl.WaitFor(t, wait, "first echo", func(e echo.Event) bool { return e.Ev == "read" && e.Seq == 1 })
	killChild(t, srv, acc.ChildPID)
	// str_cli notices nothing until its next line: the write succeeds (and
	// draws an RST), then the read returns EOF, or ECONNRESET if the RST won.
	end := cl.WaitFor(t, wait, "eof or error", func(e echo.Event) bool { return e.Ev == "eof" || e.Ev == "error" })
	if end.Seq != 2 || end.Op != "read" {
		t.Errorf("client ended with %+v, want a read of line 2", end)
	}
	code := exitCode(t, cl)
	switch code {
	case echo.ExitEOF, echo.ExitConnReset:
		t.Logf("blocking client saw %s (exit %d)", end.Errno, code)
	default:
		t.Errorf("exit %d, want %d (EOF) or %d (ECONNRESET)", code, echo.ExitEOF, echo.ExitConnReset)
	}
}

func TestKillChildEventClientIdle(t *testing.T) {
	srv, addr := startServer(t, "--mode", "fork")
	cl := startClient(t, addr, "--idle", "--read", "event")
	acc := srv.WaitFor(t, wait, "accept", proctest.Ev("accept"))
	cl.WaitFor(t, wait, "connect", proctest.Ev("connect"))
	killChild(t, srv, acc.ChildPID)
	for e := range cl.Events {
		if e.Ev == "write" {
			t.Errorf("idle client wrote: %+v", e)
		}
	}
	if code := exitCode(t, cl); code != echo.ExitEOF {
		t.Errorf("exit %d, want %d (EOF while idle)", code, echo.ExitEOF)
	}
}

func TestSigtermClose(t *testing.T) {
	for _, mode := range []string{"fork", "single"} {
		t.Run(mode, func(t *testing.T) {
			srv, addr := startServer(t, "--mode", mode, "--sigterm", "close")
			cl := startClient(t, addr, "--idle", "--read", "event")
			srv.WaitFor(t, wait, "accept", proctest.Ev("accept"))
			cl.WaitFor(t, wait, "connect", proctest.Ev("connect"))
			_ = srv.Cmd.Process.Signal(syscall.SIGTERM)
			if code := exitCode(t, cl); code != echo.ExitEOF {
				t.Errorf("client exit %d, want %d (FIN from the closing server)", code, echo.ExitEOF)
			}
			if code := exitCode(t, srv); code != 0 {
				t.Errorf("server exit %d, want 0", code)
			}
		})
	}
}

func TestSigtermIgnore(t *testing.T) {
	srv, addr := startServer(t, "--mode", "fork", "--sigterm", "ignore")
	cl := startClient(t, addr, "--idle", "--read", "event")
	acc := srv.WaitFor(t, wait, "accept", proctest.Ev("accept"))
	cl.WaitFor(t, wait, "connect", proctest.Ev("connect"))
	// The child ignores SIGTERM only once its runtime is up and said so.
	srv.WaitFor(t, wait, "child_ready", proctest.Ev("child_ready"))
	for _, pid := range []int{srv.Cmd.Process.Pid, acc.ChildPID} {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM %d: %v", pid, err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if srv.Exited() || cl.Exited() {
		t.Fatalf("SIGTERM ended something: server exited %v, client exited %v", srv.Exited(), cl.Exited())
	}
	if err := syscall.Kill(acc.ChildPID, 0); err != nil {
		t.Fatalf("child %d gone after SIGTERM: %v", acc.ChildPID, err)
	}
	killChild(t, srv, acc.ChildPID)
	if code := exitCode(t, cl); code != echo.ExitEOF {
		t.Errorf("client exit %d, want %d", code, echo.ExitEOF)
	}
}

// helperServer accepts one connection on loopback and hands it to serve.
func helperServer(t *testing.T, serve func(*net.TCPConn, *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	accepted := make(chan net.Conn, 1)
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case c := <-accepted:
			_ = c.Close() // ends a serve blocked on a peer that went silent
		default:
		}
		<-done
	})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepted <- c
		serve(c.(*net.TCPConn), bufio.NewReader(c))
		_ = c.Close()
	}()
	return ln.Addr().String()
}

// resetAfterFirstLine reads one line and aborts the connection with RST (SO_LINGER 0).
func resetAfterFirstLine(c *net.TCPConn, r *bufio.Reader) {
	_, _ = r.ReadString('\n')
	_ = c.SetLinger(0)
	_ = c.Close()
}

// finAfterFirstEcho echoes one line and closes normally (FIN), like a server
// process that exits between the client's lines.
func finAfterFirstEcho(c *net.TCPConn, r *bufio.Reader) {
	line, _ := r.ReadString('\n')
	_, _ = c.Write([]byte(line))
	_ = c.Close()
}

func TestConnReset(t *testing.T) {
	addr := helperServer(t, resetAfterFirstLine)
	cl := startClient(t, addr, "--count", "3", "--interval", "50ms")
	e := cl.WaitFor(t, wait, "error", proctest.Ev("error"))
	if e.Op != "read" || e.Errno != "ECONNRESET" {
		t.Errorf("error %+v, want read ECONNRESET", e)
	}
	if code := exitCode(t, cl); code != echo.ExitConnReset {
		t.Errorf("exit %d, want %d", code, echo.ExitConnReset)
	}
}

func TestWriteAfterResetEPIPE(t *testing.T) {
	addr := helperServer(t, finAfterFirstEcho)
	// Line 2's first byte draws the RST; the second write then fails (UNP 5.13).
	cl := startClient(t, addr, "--count", "2", "--interval", "100ms", "--twice", "--gap", "200ms")
	e := cl.WaitFor(t, wait, "error", proctest.Ev("error"))
	if e.Op != "write" || e.Seq != 2 || e.Errno != "EPIPE" {
		t.Errorf("error %+v, want write of line 2 EPIPE", e)
	}
	if code := exitCode(t, cl); code != echo.ExitPipe {
		t.Errorf("exit %d, want %d", code, echo.ExitPipe)
	}
}

func TestReadTimeout(t *testing.T) {
	addr := helperServer(t, func(c *net.TCPConn, r *bufio.Reader) { _, _ = r.ReadString('!') })
	cl := startClient(t, addr, "--count", "1", "--read-timeout", "200ms", "--exit-on-timeout")
	e := cl.WaitFor(t, wait, "read_timeout", proctest.Ev("read_timeout"))
	if e.Errno != "timeout" || e.Seq != 1 {
		t.Errorf("read_timeout %+v, want errno timeout for line 1", e)
	}
	if code := exitCode(t, cl); code != echo.ExitReadTimeout {
		t.Errorf("exit %d, want %d", code, echo.ExitReadTimeout)
	}
}
