package provision

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sshFixture is a running test server and the keys to reach it.
type sshFixture struct {
	server *testServer
	host   KeyPair
	user   KeyPair
}

// newSSHFixture starts a test server with fresh keys.
func newSSHFixture(t *testing.T) sshFixture {
	t.Helper()
	host, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	user, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return sshFixture{server: startTestServer(t, nil, host.Signer, user.PublicKey()), host: host, user: user}
}

// dial connects to the fixture's server.
func (f sshFixture) dial(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, f.server.addr, f.host.PublicKey(), f.user.Signer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRun(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	ctx := context.Background()
	tests := []struct {
		cmd, stdin    string
		env           map[string]string
		status        int
		stdout, stder string
	}{
		{cmd: "true"},
		{cmd: "echo out; echo err >&2; exit 3", status: 3, stdout: "out\n", stder: "err\n"},
		{cmd: "tr a-z A-Z", stdin: "hello", stdout: "HELLO"},
		{cmd: `printf %s "$A|$B"`, env: map[string]string{"A": "it's", "B": "$HOME x"}, stdout: "it's|$HOME x"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		status, err := c.Run(ctx, tt.cmd, RunOptions{Stdin: strings.NewReader(tt.stdin), Stdout: &stdout, Stderr: &stderr, Env: tt.env})
		if err != nil || status != tt.status || stdout.String() != tt.stdout || stderr.String() != tt.stder {
			t.Errorf("Run(%q) = %d, %v, stdout %q, stderr %q; want %d, nil, %q, %q",
				tt.cmd, status, err, stdout.String(), stderr.String(), tt.status, tt.stdout, tt.stder)
		}
	}
	if _, err := c.Run(ctx, "true", RunOptions{Env: map[string]string{"A;B": "x"}}); err == nil {
		t.Error("invalid variable name accepted")
	}
}

func TestRunSignal(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	status, err := c.Run(context.Background(), "kill -TERM $$", RunOptions{})
	var sigErr *ExitSignalError
	if status != 128+15 || !errors.As(err, &sigErr) || sigErr.Signal != "TERM" {
		t.Errorf("Run(kill -TERM $$) = %d, %v; want 143 and an ExitSignalError", status, err)
	}
}

func TestRunContextCancelKills(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for i := 0; i < 500; i++ {
			if b, _ := os.ReadFile(pidFile); len(b) > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	status, err := c.Run(ctx, "echo $$ > "+pidFile+"; exec sleep 60", RunOptions{})
	if status != -1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %d, %v; want -1 and context.Canceled", status, err)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for i := 0; ; i++ {
		if pid <= 0 || syscall.Kill(pid, 0) != nil {
			break
		}
		if i == 500 {
			t.Fatalf("remote process %d still running after the cancel", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, err := c.Output(context.Background(), "echo still usable"); err != nil || string(out) != "still usable\n" {
		t.Errorf("client after cancel: %q, %v", out, err)
	}
}

func TestOutput(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	out, err := c.Output(context.Background(), "echo hi")
	if err != nil || string(out) != "hi\n" {
		t.Errorf("Output(echo hi) = %q, %v", out, err)
	}
	_, err = c.Output(context.Background(), "echo oops >&2; exit 2")
	var exitErr *ExitError
	if !errors.As(err, &exitErr) || exitErr.Status != 2 || exitErr.Stderr != "oops" {
		t.Errorf("Output(exit 2) error = %v; want ExitError status 2 with stderr", err)
	}
}

func TestUpload(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	ctx := context.Background()
	dir := t.TempDir()
	local := filepath.Join(dir, "local")
	remote := filepath.Join(dir, "remote", "sub", "file") // the "guest" is this host
	os.WriteFile(local, []byte("version 1"), 0o600)

	steps := []struct {
		content string
		mode    os.FileMode
		changed bool
	}{
		{"version 1", 0o755, true},  // new file, parents created
		{"version 1", 0o755, false}, // identical
		{"version 2", 0o755, true},  // new content
		{"version 2", 0o644, true},  // new mode only
		{"version 2", 0o644, false},
	}
	for i, s := range steps {
		os.WriteFile(local, []byte(s.content), 0o600)
		changed, err := c.Upload(ctx, local, remote, s.mode)
		if err != nil || changed != s.changed {
			t.Fatalf("step %d: Upload = %v, %v; want changed %v", i, changed, err, s.changed)
		}
		got, _ := os.ReadFile(remote)
		fi, _ := os.Stat(remote)
		if string(got) != s.content || fi.Mode().Perm() != s.mode {
			t.Errorf("step %d: remote has %q mode %v, want %q %v", i, got, fi.Mode(), s.content, s.mode)
		}
	}
	if _, err := os.Stat(remote + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if _, err := c.Upload(ctx, local, "relative/path", 0o644); err == nil {
		t.Error("relative remote path accepted")
	}
}

func TestHostKeyMismatch(t *testing.T) {
	f := newSSHFixture(t)
	other, _ := GenerateKey()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Dial(ctx, f.server.addr, other.PublicKey(), f.user.Signer); !errors.Is(err, ErrHostKeyMismatch) {
		t.Errorf("Dial with the wrong host key: %v, want ErrHostKeyMismatch", err)
	}
	start := time.Now()
	_, err := WaitReady(ctx, f.server.addr, other.PublicKey(), f.user.Signer, nil)
	if !errors.Is(err, ErrHostKeyMismatch) || ctx.Err() != nil {
		t.Errorf("WaitReady with the wrong host key: %v after %s; want ErrHostKeyMismatch at once", err, time.Since(start))
	}
}

func TestDialHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never speaks SSH
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	k, _ := GenerateKey()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, ln.Addr().String(), k.PublicKey(), k.Signer); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial to a silent server: %v, want context.DeadlineExceeded", err)
	}
}

func TestWaitReadyServerAppearsLater(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused until the server starts
	host, _ := GenerateKey()
	user, _ := GenerateKey()
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return // the port was taken meanwhile; WaitReady will time out
		}
		startTestServer(t, ln, host.Signer, user.PublicKey())
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var msgs []string
	c, err := WaitReady(ctx, addr, host.PublicKey(), user.Signer, func(s string) { msgs = append(msgs, s) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if out, err := c.Output(ctx, "echo ok"); err != nil || string(out) != "ok\n" {
		t.Errorf("Output = %q, %v", out, err)
	}
	if len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1], "ready") {
		t.Errorf("progress = %q", msgs)
	}
}

func TestWaitReadyGivesUp(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	k, _ := GenerateKey()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := WaitReady(ctx, addr, k.PublicKey(), k.Signer, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("WaitReady with no server: %v; want DeadlineExceeded naming the last error", err)
	}
}

func TestShell(t *testing.T) {
	f := newSSHFixture(t)
	c := f.dial(t)
	resize := make(chan WindowSize, 1)
	resize <- WindowSize{Width: 100, Height: 30}
	var stdout, stderr bytes.Buffer
	status, err := c.Shell(context.Background(), ShellOptions{
		Stdin:  strings.NewReader("sleep 0.2; echo hi; exit 4\n"),
		Stdout: &stdout, Stderr: &stderr, Resize: resize,
	})
	if err != nil || status != 4 || stdout.String() != "hi\n" {
		t.Errorf("Shell = %d, %v, output %q; want 4, nil, \"hi\\n\"", status, err, stdout.String())
	}
	f.server.mu.Lock()
	defer f.server.mu.Unlock()
	if len(f.server.resizes) != 1 || f.server.resizes[0] != "100x30" {
		t.Errorf("window changes = %q, want [100x30]", f.server.resizes)
	}
}
