package guestinit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// testSigner returns a deterministic ed25519 signer for seed byte b.
func testSigner(t *testing.T, b byte) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)))
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	return s
}

type testServer struct {
	addr    string
	hostKey ssh.Signer
	client  ssh.Signer
}

// startServer runs an SSHServer on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{hostKey: testSigner(t, 1), client: testSigner(t, 2)}
	srv := NewSSHServer(ts.hostKey, []ssh.PublicKey{ts.client.PublicKey()}, NewProcTable())
	var mu sync.Mutex
	done := false
	srv.Logf = func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(format, args...)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return ts
}

func (ts *testServer) dial(t *testing.T, client ssh.Signer, hostKey ssh.PublicKey) (*ssh.Client, error) {
	t.Helper()
	cfg := &ssh.ClientConfig{
		User:            "anyone",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(client)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
		Timeout:         30 * time.Second,
	}
	return ssh.Dial("tcp", ts.addr, cfg)
}

func (ts *testServer) mustDial(t *testing.T) *ssh.Client {
	t.Helper()
	c, err := ts.dial(t, ts.client, ts.hostKey.PublicKey())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newSession(t *testing.T, c *ssh.Client) *ssh.Session {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func exitError(t *testing.T, err error) *ssh.ExitError {
	t.Helper()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("got error %v (%T), want *ssh.ExitError", err, err)
	}
	return ee
}

func TestExecOutputAndExitStatus(t *testing.T) {
	c := startServer(t).mustDial(t)
	out, err := newSession(t, c).CombinedOutput("echo hi; exit 3")
	if got := string(out); got != "hi\n" {
		t.Errorf("output = %q, want %q", got, "hi\n")
	}
	if ee := exitError(t, err); ee.ExitStatus() != 3 || ee.Signal() != "" {
		t.Errorf("exit status %d signal %q, want 3 and none", ee.ExitStatus(), ee.Signal())
	}
}

func TestExecStderrAndEnv(t *testing.T) {
	c := startServer(t).mustDial(t)
	s := newSession(t, c)
	if err := s.Setenv("HOSTLAB_TEST", "v1"); err != nil {
		t.Fatalf("setenv: %v", err)
	}
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Run("echo $HOSTLAB_TEST; echo oops >&2"); err != nil {
		t.Fatalf("run: %v", err)
	}
	if stdout.String() != "v1\n" || stderr.String() != "oops\n" {
		t.Errorf("stdout %q stderr %q, want %q and %q", stdout.String(), stderr.String(), "v1\n", "oops\n")
	}
}

func TestWrongClientKeyRejected(t *testing.T) {
	ts := startServer(t)
	c, err := ts.dial(t, testSigner(t, 3), ts.hostKey.PublicKey())
	if err == nil {
		c.Close()
		t.Fatal("dial with an unauthorized key succeeded")
	}
}

func TestWrongHostKeyRejected(t *testing.T) {
	ts := startServer(t)
	c, err := ts.dial(t, ts.client, testSigner(t, 4).PublicKey())
	if err == nil {
		c.Close()
		t.Fatal("dial pinning the wrong host key succeeded")
	}
}

func TestStdinAndEOF(t *testing.T) {
	c := startServer(t).mustDial(t)
	s := newSession(t, c)
	s.Stdin = strings.NewReader("line one\nline two\n")
	out, err := s.Output("cat")
	if err != nil {
		t.Fatalf("cat: %v", err)
	}
	if got := string(out); got != "line one\nline two\n" {
		t.Errorf("cat output = %q", got)
	}
}

func TestSFTPUploadThenRun(t *testing.T) {
	c := startServer(t).mustDial(t)
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatalf("sftp client: %v", err)
	}
	defer sc.Close()
	path := filepath.Join(t.TempDir(), "script.sh")
	f, err := sc.Create(path)
	if err != nil {
		t.Fatalf("sftp create: %v", err)
	}
	if _, err := f.Write([]byte("echo uploaded $1\nexit 7\n")); err != nil {
		t.Fatalf("sftp write: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("sftp close: %v", err)
	}
	out, err := newSession(t, c).Output("sh -c '. " + path + "' sh arg")
	if string(out) != "uploaded arg\n" {
		t.Errorf("output = %q, want %q", out, "uploaded arg\n")
	}
	if ee := exitError(t, err); ee.ExitStatus() != 7 {
		t.Errorf("exit status = %d, want 7", ee.ExitStatus())
	}
}

func TestSignalKillsProcessGroup(t *testing.T) {
	c := startServer(t).mustDial(t)
	s := newSession(t, c)
	if err := s.Start("sleep 100"); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := s.Signal(ssh.SIGTERM); err != nil {
		t.Fatalf("signal: %v", err)
	}
	if ee := exitError(t, s.Wait()); ee.Signal() != "TERM" {
		t.Errorf("exit signal = %q (status %d), want TERM", ee.Signal(), ee.ExitStatus())
	}
}

func TestExitSignalReported(t *testing.T) {
	c := startServer(t).mustDial(t)
	err := newSession(t, c).Run("kill -KILL $$")
	if ee := exitError(t, err); ee.Signal() != "KILL" {
		t.Errorf("exit signal = %q (status %d), want KILL", ee.Signal(), ee.ExitStatus())
	}
}

func TestKeepalive(t *testing.T) {
	c := startServer(t).mustDial(t)
	ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
	if err != nil || !ok {
		t.Errorf("keepalive: ok %v err %v, want true and nil", ok, err)
	}
}

func TestDisconnectHangsUpProcessGroup(t *testing.T) {
	ts := startServer(t)
	c, err := ts.dial(t, ts.client, ts.hostKey.PublicKey())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	s, err := c.NewSession()
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout: %v", err)
	}
	if err := s.Start("echo $$; exec sleep 100"); err != nil {
		t.Fatalf("start: %v", err)
	}
	line := make([]byte, 32)
	n, err := stdout.Read(line)
	if err != nil {
		t.Fatalf("read pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("parse pid %q: %v", line[:n], err)
	}
	c.Close() // drop the connection
	if !waitGone(pid, 20*time.Second) {
		_ = unix.Kill(pid, unix.SIGKILL)
		t.Fatalf("process %d survived the disconnect", pid)
	}
}

// waitGone waits until pid no longer exists (it was reaped), up to limit.
func waitGone(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); errors.Is(err, os.ErrNotExist) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func TestBackgroundChildDoesNotHoldSession(t *testing.T) {
	c := startServer(t).mustDial(t)
	out, err := newSession(t, c).Output("sleep 30 & echo $!")
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("parse pid %q: %v", out, err)
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Errorf("kill background sleep: %v", err)
	}
}
