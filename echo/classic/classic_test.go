package classic_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/echo/classic"
	"github.com/hostlab/hostlab/echo/internal/proctest"
)

const wait = 10 * time.Second

var server, client, buildErr string

// TestMain builds the pair once for every test, or records why it could not.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hostlab-classic-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := exec.LookPath("cc"); err != nil {
		buildErr = "no C compiler (cc) on PATH"
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var err error
		if server, client, err = classic.Build(ctx, "", dir); err != nil {
			buildErr = err.Error()
		}
		cancel()
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func requireBuild(t *testing.T) {
	t.Helper()
	if buildErr == "" {
		return
	}
	if strings.HasPrefix(buildErr, "no C compiler") {
		t.Skip(buildErr)
	}
	t.Fatalf("build: %s", buildErr)
}

// startServer runs the C server on a free port and returns it with the loopback address to dial.
func startServer(t *testing.T, args ...string) (*proctest.Proc, []string) {
	t.Helper()
	srv := proctest.Start(t, server, "", append(args, "0")...)
	e := srv.WaitFor(t, wait, "listen", proctest.Ev("listen"))
	return srv, []string{"127.0.0.1", fmt.Sprint(proctest.Port(t, e.Local))}
}

func TestBuildAndRoundTrip(t *testing.T) {
	requireBuild(t)
	srv, hostPort := startServer(t)
	cl := proctest.Start(t, client, "", append([]string{"--lines", "3", "--interval-ms", "20"}, hostPort...)...)
	reads := 0
	for e := range cl.Events {
		if e.Ev == "read" {
			reads++
		}
		if e.MonoNS == 0 || e.RealNS == 0 {
			t.Errorf("event without timestamps: %+v", e)
		}
	}
	if ws := cl.Wait(t, wait); ws.ExitStatus() != echo.ExitOK {
		t.Errorf("client wait status %v, want exit 0", ws)
	}
	if reads < 3 {
		t.Errorf("%d reads, want at least 3", reads)
	}
	e := srv.WaitFor(t, wait, "child_exit", proctest.Ev("child_exit"))
	if e.Status == nil || *e.Status != 0 {
		t.Errorf("child_exit %+v, want status 0", e)
	}
}

// killChildAfterFirstEcho kills the server child once line 1 is back (UNP 5.12).
func killChildAfterFirstEcho(t *testing.T, srv, cl *proctest.Proc, writesPerLine int) {
	t.Helper()
	acc := srv.WaitFor(t, wait, "accept", proctest.Ev("accept"))
	// The whole first line must be back: with --twice a loaded server may
	// echo the first part alone, and a kill then would land mid-line.
	var writes, wrote, read int
	cl.WaitFor(t, wait, "first echo", func(e echo.Event) bool {
		switch {
		case e.Ev == "write" && e.Seq == 1:
			writes++
			wrote += e.Bytes
		case e.Ev == "read" && e.Seq == 1:
			read += e.Bytes
		}
		return writes == writesPerLine && read >= wrote
	})
	if err := syscall.Kill(acc.ChildPID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	e := srv.WaitFor(t, wait, "child_exit", proctest.Ev("child_exit"))
	if e.Signal != "SIGKILL" {
		t.Errorf("child_exit %+v, want SIGKILL", e)
	}
}

func TestServerChildKilled(t *testing.T) {
	requireBuild(t)
	srv, hostPort := startServer(t)
	cl := proctest.Start(t, client, "", append([]string{"--lines", "3", "--interval-ms", "300"}, hostPort...)...)
	killChildAfterFirstEcho(t, srv, cl, 1)
	ws := cl.Wait(t, wait)
	switch ws.ExitStatus() {
	case echo.ExitEOF:
		if !strings.Contains(cl.Stderr(), "server terminated prematurely") {
			t.Errorf("stderr %q, want 'server terminated prematurely'", cl.Stderr())
		}
	case echo.ExitConnReset:
		t.Logf("the RST beat the read: ECONNRESET")
	default:
		t.Errorf("client wait status %v, want exit %d or %d", ws, echo.ExitEOF, echo.ExitConnReset)
	}
}

func TestSigpipe(t *testing.T) {
	requireBuild(t)
	for _, disp := range []string{"default", "ignore"} {
		t.Run(disp, func(t *testing.T) {
			srv, hostPort := startServer(t)
			// The kill must land while the client sleeps after its first echo,
			// not between line 2's two writes (that gives EOF): a long sleep
			// keeps it there even on a loaded machine.
			args := []string{"--sigpipe=" + disp, "--lines", "3", "--interval-ms", "1500", "--twice", "--gap-ms", "200"}
			cl := proctest.Start(t, client, "", append(args, hostPort...)...)
			killChildAfterFirstEcho(t, srv, cl, 2)
			var last echo.Event
			for e := range cl.Events {
				last = e
			}
			ws := cl.Wait(t, wait)
			if disp == "default" {
				if !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
					t.Fatalf("client wait status %v, want killed by SIGPIPE", ws)
				}
				if last.Ev != "write" || last.Seq != 2 || cl.Stderr() != "" {
					t.Errorf("killed client's last event %+v, stderr %q; want line 2's first write and silence", last, cl.Stderr())
				}
				return
			}
			if ws.Signaled() || ws.ExitStatus() != echo.ExitPipe {
				t.Fatalf("client wait status %v, want exit %d (EPIPE)", ws, echo.ExitPipe)
			}
			if !strings.Contains(cl.Stderr(), "write: ") || !strings.Contains(cl.Stderr(), "(errno EPIPE)") {
				t.Errorf("stderr %q, want a write error naming EPIPE", cl.Stderr())
			}
		})
	}
}

func TestServerSigtermIgnore(t *testing.T) {
	requireBuild(t)
	srv, hostPort := startServer(t, "--sigterm", "ignore")
	cl := proctest.Start(t, client, "", append([]string{"--lines", "2", "--interval-ms", "400"}, hostPort...)...)
	acc := srv.WaitFor(t, wait, "accept", proctest.Ev("accept"))
	cl.WaitFor(t, wait, "first echo", func(e echo.Event) bool { return e.Ev == "read" && e.Seq == 1 })
	for _, pid := range []int{srv.Cmd.Process.Pid, acc.ChildPID} {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	if ws := cl.Wait(t, wait); ws.ExitStatus() != echo.ExitOK {
		t.Errorf("client wait status %v, want exit 0: SIGTERM should not have ended the server", ws)
	}
	if srv.Exited() {
		t.Errorf("server exited on an ignored SIGTERM")
	}
}

// TestBuildConcurrent: runs building into one cache at once each get a
// whole binary, never another's half-written one.
func TestBuildConcurrent(t *testing.T) {
	requireBuild(t)
	dir := t.TempDir()
	errs := make(chan error, 6)
	for range 3 {
		go func() {
			_, cl, err := classic.Build(context.Background(), "", dir)
			if err == nil {
				var b []byte
				if b, err = os.ReadFile(cl); err == nil && (len(b) < 4 || string(b[:4]) != "\x7fELF") {
					err = fmt.Errorf("%s is not a whole ELF file (%d bytes)", cl, len(b))
				}
			}
			errs <- err
		}()
		go func() {
			// A reader during the builds sees the old file or the new one.
			var err error
			for range 50 {
				if b, rerr := os.ReadFile(filepath.Join(dir, classic.ClientBinary)); rerr == nil && (len(b) < 4 || string(b[:4]) != "\x7fELF") {
					err = fmt.Errorf("a reader saw a partial client binary (%d bytes)", len(b))
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
