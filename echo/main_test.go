package echo_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/echo/internal/proctest"
)

// TestMain lets the test binary stand in for the multi-call hostlab binary:
// run under argv[0] hostlab-echo-server or hostlab-echo-client it is that
// program, which is also how fork mode re-executes itself.
func TestMain(m *testing.M) {
	switch filepath.Base(os.Args[0]) {
	case echo.ServerName:
		os.Exit(echo.ServerMain(os.Args[1:]))
	case echo.ClientName:
		os.Exit(echo.ClientMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

const wait = 10 * time.Second

// startServer runs the Go echo server on a free loopback port and returns it with its address.
func startServer(t *testing.T, args ...string) (*proctest.Proc, string) {
	t.Helper()
	args = append([]string{"--listen", "127.0.0.1:0"}, args...)
	p := proctest.Start(t, proctest.Self(t), echo.ServerName, args...)
	e := p.WaitFor(t, wait, "listen", proctest.Ev("listen"))
	return p, e.Local
}

// startClient runs the Go echo client against addr, sampling TCP_INFO only on change.
func startClient(t *testing.T, addr string, args ...string) *proctest.Proc {
	t.Helper()
	args = append([]string{"--connect", addr, "--sample", "0"}, args...)
	return proctest.Start(t, proctest.Self(t), echo.ClientName, args...)
}

// exitCode waits for p and returns its exit code, failing if a signal killed it.
func exitCode(t *testing.T, p *proctest.Proc) int {
	t.Helper()
	ws := p.Wait(t, wait)
	if ws.Signaled() {
		t.Fatalf("%s killed by %v", p.Name, ws.Signal())
	}
	return ws.ExitStatus()
}

func TestRoundTrip(t *testing.T) {
	for _, mode := range []string{"fork", "single"} {
		for _, disc := range []string{"blocking", "event"} {
			t.Run(mode+"/"+disc, func(t *testing.T) {
				srv, addr := startServer(t, "--mode", mode)
				cl := startClient(t, addr, "--count", "3", "--interval", "20ms", "--read", disc)
				conn := cl.WaitFor(t, wait, "connect", proctest.Ev("connect"))
				if conn.Sockopts == nil || conn.Sockopts.Keepalive || conn.Sockopts.NoDelay {
					t.Errorf("connect sockopts = %+v, want keepalive and nodelay off", conn.Sockopts)
				}
				acc := srv.WaitFor(t, wait, "accept", proctest.Ev("accept"))
				if acc.Peer != conn.Local {
					t.Errorf("accept peer %q, client local %q", acc.Peer, conn.Local)
				}
				if mode == "fork" && acc.ChildPID == srv.Cmd.Process.Pid {
					t.Errorf("fork mode served the connection in the parent (pid %d)", acc.ChildPID)
				}
				var wrote, read int
				for e := range cl.Events {
					switch e.Ev {
					case "write":
						wrote += e.Bytes
					case "read":
						read += e.Bytes
					case "exit":
						if *e.Code != 0 || e.Outcome != "done" {
							t.Errorf("exit event %+v, want code 0 done", e)
						}
					}
				}
				if code := exitCode(t, cl); code != echo.ExitOK {
					t.Fatalf("client exit %d, want 0", code)
				}
				if wrote == 0 || wrote != read {
					t.Errorf("wrote %d bytes, read back %d", wrote, read)
				}
				if mode == "fork" {
					e := srv.WaitFor(t, wait, "child_exit", proctest.Ev("child_exit"))
					if e.ChildPID != acc.ChildPID || e.Status == nil || *e.Status != 0 {
						t.Errorf("child_exit %+v, want pid %d status 0", e, acc.ChildPID)
					}
				}
			})
		}
	}
}

func TestPidFile(t *testing.T) {
	for _, mode := range []string{"fork", "single"} {
		t.Run(mode, func(t *testing.T) {
			pidDir := t.TempDir()
			srv, addr := startServer(t, "--mode", mode, "--pid-dir", pidDir)
			cl := startClient(t, addr, "--idle", "--max-time", "5s")
			conn := cl.WaitFor(t, wait, "connect", proctest.Ev("connect"))
			acc := srv.WaitFor(t, wait, "accept", proctest.Ev("accept"))
			want := strconv.Itoa(acc.ChildPID) + "\n"
			file := filepath.Join(pidDir, fmt.Sprint(proctest.Port(t, conn.Local))+".pid")
			if b, err := os.ReadFile(file); err != nil || string(b) != want {
				t.Errorf("pid file %s = %q, %v; want %q", file, b, err, want)
			}
		})
	}
}

func TestMaxTimeStillConnected(t *testing.T) {
	_, addr := startServer(t, "--mode", "single")
	cl := startClient(t, addr, "--idle", "--max-time", "300ms")
	e := cl.WaitFor(t, wait, "exit", proctest.Ev("exit"))
	if e.Outcome != "max_time" {
		t.Errorf("outcome %q, want max_time", e.Outcome)
	}
	if code := exitCode(t, cl); code != echo.ExitOK {
		t.Errorf("exit %d, want %d", code, echo.ExitOK)
	}
}

func TestConnectRefused(t *testing.T) {
	srv, addr := startServer(t, "--mode", "single")
	_ = srv.Cmd.Process.Kill()
	srv.Wait(t, wait)
	cl := startClient(t, addr, "--count", "1")
	e := cl.WaitFor(t, wait, "error", proctest.Ev("error"))
	if e.Op != "connect" || e.Errno != "ECONNREFUSED" {
		t.Errorf("error %+v, want connect ECONNREFUSED", e)
	}
	if code := exitCode(t, cl); code != echo.ExitConnRefused {
		t.Errorf("exit %d, want %d", code, echo.ExitConnRefused)
	}
}
