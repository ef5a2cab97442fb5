package echo_test

import (
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/echo/internal/proctest"
)

// TestFloodRoundTrip: --flood writes blocks without waiting for their echo,
// drains the echo between blocks, and with --count reads every byte back.
func TestFloodRoundTrip(t *testing.T) {
	_, addr := startServer(t, "--mode", "fork")
	cl := startClient(t, addr, "--flood", "32768", "--count", "8", "--interval", "5ms")
	var wrote, read, writes int
	for e := range cl.Events {
		switch e.Ev {
		case "write":
			wrote += e.Bytes
			writes++
			if e.Bytes != 32768 {
				t.Errorf("write of %d bytes, want whole blocks of 32768", e.Bytes)
			}
		case "read":
			read += e.Bytes
		case "error", "eof":
			t.Errorf("flood ended with %+v", e)
		}
	}
	if code := exitCode(t, cl); code != echo.ExitOK {
		t.Fatalf("client exit %d, want 0", code)
	}
	if writes != 8 || wrote != read {
		t.Errorf("%d writes, %d bytes written, %d read back; want 8 writes, all read back", writes, wrote, read)
	}
}

// TestFloodRefusesOtherDisciplines: --flood is a discipline of its own.
func TestFloodRefusesOtherDisciplines(t *testing.T) {
	for _, extra := range []string{"--idle", "--twice"} {
		cl := startClient(t, "127.0.0.1:9", "--flood", "1024", extra)
		if code := exitCode(t, cl); code != echo.ExitUsage {
			t.Errorf("--flood with %s: exit %d, want %d", extra, code, echo.ExitUsage)
		}
	}
}

// TestFloodStoppedServerUserTimeout is hang-server on loopback: the server's
// connection process is stopped, its receive window closes, the client's
// kernel probes the zero window and the live kernel answers; only
// TCP_USER_TIMEOUT ends the connection, with ETIMEDOUT.
func TestFloodStoppedServerUserTimeout(t *testing.T) {
	srv, addr := startServer(t, "--mode", "fork")
	cl := startClient(t, addr, "--flood", "262144", "--interval", "5ms", "--user-timeout", "1s")
	acc := srv.WaitFor(t, wait, "accept", proctest.Ev("accept"))
	cl.WaitFor(t, wait, "first echo", proctest.Ev("read"))
	if err := syscall.Kill(acc.ChildPID, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", acc.ChildPID, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(acc.ChildPID, syscall.SIGCONT) })
	e := cl.WaitFor(t, 4*wait, "error", proctest.Ev("error"))
	if e.Errno != "ETIMEDOUT" {
		t.Errorf("error %+v, want ETIMEDOUT at the user timeout", e)
	}
	if code := exitCode(t, cl); code != echo.ExitTimedOut {
		t.Errorf("exit %d, want %d", code, echo.ExitTimedOut)
	}
}

// TestConnectingEvent: the client says when it calls connect, before the
// outcome, so a failed connect has an instant to count from.
func TestConnectingEvent(t *testing.T) {
	srv, addr := startServer(t, "--mode", "single")
	_ = srv.Cmd.Process.Kill()
	srv.Wait(t, wait)
	cl := startClient(t, addr, "--count", "1")
	var order []string
	for e := range cl.Events {
		switch e.Ev {
		case "connecting":
			if e.Peer != addr {
				t.Errorf("connecting to %q, want %q", e.Peer, addr)
			}
			order = append(order, e.Ev)
		case "error":
			order = append(order, e.Ev+" "+e.Op+" "+e.Errno)
		}
	}
	exitCode(t, cl)
	if len(order) != 2 || order[0] != "connecting" || order[1] != "error connect ECONNREFUSED" {
		t.Errorf("events %q, want connecting, then error connect ECONNREFUSED", order)
	}
}

// TestConnectWatchSeesSynSent: a listener whose accept queue is full drops
// SYNs, so the client's connect waits in SYN_SENT; the client samples its
// socket's TCP_INFO while it waits.
func TestConnectWatchSeesSynSent(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil { // Room for one connection.
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	first, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(first) })
	if err := unix.Connect(first, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatal(err)
	}
	cl := startClient(t, "127.0.0.1:"+strconv.Itoa(port), "--count", "1", "--max-time", "700ms")
	synSent := false
	for e := range cl.Events {
		if e.Ev == "tcp_info" && e.Reason == "connecting" && e.TCPInfo.State == "SYN_SENT" {
			synSent = true
		}
		if e.Ev == "exit" && e.Outcome != "max_time_connecting" {
			t.Errorf("exit %+v, want max_time_connecting", e)
		}
	}
	exitCode(t, cl)
	if !synSent {
		t.Error("no connecting tcp_info sample in SYN_SENT")
	}
}
