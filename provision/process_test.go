package provision

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"reflect"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// lines returns a LineWriter that sends each line, as a string, to the
// returned channel.
func lines() (*LineWriter, <-chan string) {
	ch := make(chan string, 100)
	return NewLineWriter(func(l []byte) { ch <- string(l) }), ch
}

// waitTimeout waits for p, failing the test if it has not ended after d.
func waitTimeout(t *testing.T, p *Process, d time.Duration) (int, error) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(d):
		t.Fatalf("process still running after %s", d)
	}
	return p.Wait()
}

func TestStartStreamsOutput(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	w, got := lines()
	p, err := c.Start(context.Background(), "for i in 1 2 3; do echo $i; sleep 0.1; done", StartOptions{Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	if l := <-got; l != "1" {
		t.Fatalf("first line %q, want 1", l)
	}
	select {
	case <-p.Done():
		t.Fatal("first line arrived only after the process ended")
	default:
	}
	if status, err := waitTimeout(t, p, 10*time.Second); status != 0 || err != nil {
		t.Fatalf("Wait = %d, %v; want 0, nil", status, err)
	}
	if a, b := <-got, <-got; a != "2" || b != "3" {
		t.Errorf("later lines %q, %q; want 2, 3", a, b)
	}
}

func TestStartStdinAndEnv(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	w, got := lines()
	in, feed := io.Pipe()
	p, err := c.Start(context.Background(), `echo "ready $X"; read x; echo "got $x" >&2; exit 4`,
		StartOptions{Stdout: w, Stderr: w, Stdin: in, Env: map[string]string{"X": "a b"}})
	if err != nil {
		t.Fatal(err)
	}
	if l := <-got; l != "ready a b" {
		t.Fatalf("first line %q, want %q", l, "ready a b")
	}
	// The process waits for its input, so it cannot have ended yet.
	select {
	case <-p.Done():
		t.Fatal("process ended before reading its input")
	default:
	}
	bw := bufio.NewWriter(feed)
	bw.WriteString("hello\n")
	bw.Flush()
	feed.Close()
	if status, err := waitTimeout(t, p, 10*time.Second); status != 4 || err != nil {
		t.Fatalf("Wait = %d, %v; want 4, nil", status, err)
	}
	if l := <-got; l != "got hello" {
		t.Errorf("second line %q, want %q", l, "got hello")
	}
}

// sleeper runs in place of the shell: the test server signals only the
// shell's pid, not its group as a guest does, and dash, signalled early,
// may fork sleep instead of exec'ing it.
const sleeper = "exec sleep 100"

func TestProcessSignal(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	p, err := c.Start(context.Background(), sleeper, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(ssh.SIGTERM); err != nil {
		t.Fatal(err)
	}
	status, err := waitTimeout(t, p, 10*time.Second)
	var sigErr *ExitSignalError
	if status != 128+15 || !errors.As(err, &sigErr) || sigErr.Signal != "TERM" {
		t.Errorf("Wait after SIGTERM = %d, %v; want 143 and an ExitSignalError", status, err)
	}
	if err := p.Signal(ssh.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after the end = %v; want os.ErrProcessDone", err)
	}
}

func TestProcessKill(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	p, err := c.Start(context.Background(), sleeper, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	status, err := waitTimeout(t, p, 10*time.Second)
	var sigErr *ExitSignalError
	if status != 128+9 || !errors.As(err, &sigErr) || sigErr.Signal != "KILL" {
		t.Errorf("Wait after Kill = %d, %v; want 137 and an ExitSignalError", status, err)
	}
	if err := p.Kill(); err != nil {
		t.Errorf("second Kill = %v; want nil", err)
	}
}

func TestStartContextCancel(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, got := lines()
	p, err := c.Start(ctx, "echo up; "+sleeper, StartOptions{Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	<-got
	cancel()
	status, err := waitTimeout(t, p, 10*time.Second)
	if status != -1 || !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel = %d, %v; want -1 and context.Canceled", status, err)
	}
	if _, err := c.Start(ctx, "true", StartOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a done ctx = %v; want context.Canceled", err)
	}
	if out, err := c.Output(context.Background(), "echo still usable"); err != nil || string(out) != "still usable\n" {
		t.Errorf("client after cancel: %q, %v", out, err)
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := NewLineWriter(func(l []byte) { got = append(got, string(l)) })
	for _, s := range []string{"a", "b\nc", "\n\n", "d\ne\nf", "g"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	want := []string{"ab", "c", "", "d", "e"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lines before Close = %q, want %q", got, want)
	}
	w.Close()
	w.Close()
	if want = append(want, "fg"); !reflect.DeepEqual(got, want) {
		t.Errorf("lines after Close = %q, want %q", got, want)
	}
}
