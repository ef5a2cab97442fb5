package guestinit

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

func TestPtyShell(t *testing.T) {
	c := startServer(t).mustDial(t)
	s := newSession(t, c)
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatalf("request pty: %v", err)
	}
	var out bytes.Buffer
	s.Stdout = &out
	s.Stdin = strings.NewReader("test -t 0 && echo tty-yes\necho $((6*7))\nexit\n")
	if err := s.Shell(); err != nil {
		t.Fatalf("shell: %v", err)
	}
	if err := s.WindowChange(40, 100); err != nil {
		t.Errorf("window change: %v", err)
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("wait: %v (output %q)", err, out.String())
	}
	for _, want := range []string{"42", "tty-yes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("pty output %q lacks %q", out.String(), want)
		}
	}
}

func TestPtyMasterHonoursDeadline(t *testing.T) {
	ptmx, tty, err := openPty()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := setWinsize(ptmx, 100, 40); err != nil {
		t.Errorf("setWinsize: %v", err)
	}
	if err := ptmx.SetReadDeadline(time.Now()); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	if _, err := ptmx.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read = %v, want deadline exceeded", err)
	}
	ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col != 100 || ws.Row != 40 {
		t.Errorf("window size = %+v, %v; want 100x40", ws, err)
	}
}
