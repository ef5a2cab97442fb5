// Package proctest runs echo programs as child processes in tests and
// collects their JSON-line events.
package proctest

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hostlab/hostlab/echo"
)

// Proc is a started program, in its own process group, and its events.
type Proc struct {
	Name   string
	Cmd    *exec.Cmd
	Events chan echo.Event
	done   chan struct{}
	err    error
	stderr lockedBuffer
	mu     sync.Mutex
	lines  []string
}

// lockedBuffer is a strings.Builder safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs path with argv[0] set to argv0 (path when empty) and args, in a
// new process group that t.Cleanup kills with SIGKILL.
func Start(t *testing.T, path, argv0 string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(path, args...)
	if argv0 != "" {
		cmd.Args[0] = argv0
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout pipe: %v", err)
	}
	p := &Proc{Name: cmd.Args[0], Cmd: cmd, Events: make(chan echo.Event, 4096), done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			var e echo.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				select {
				case p.Events <- e:
				default: // nobody is listening; Output still has the line
				}
			}
		}
		p.err = cmd.Wait()
		close(p.Events)
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("%s (pid %d) stdout:\n%s\nstderr:\n%s", p.Name, cmd.Process.Pid, p.Output(), p.stderr.String())
		}
	})
	return p
}

// Output returns every stdout line seen so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// Stderr returns what the program wrote to stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// WaitFor returns the first later event for which match is true, failing the
// test if the program exits or d passes first.
func (p *Proc) WaitFor(t *testing.T, d time.Duration, what string, match func(echo.Event) bool) echo.Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-p.Events:
			if !ok {
				t.Fatalf("%s exited before %s", p.Name, what)
			}
			if match(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("%s: no %s within %v", p.Name, what, d)
		}
	}
}

// Ev matches events by name.
func Ev(name string) func(echo.Event) bool {
	return func(e echo.Event) bool { return e.Ev == name }
}

// Wait waits up to d for the program to exit and returns its wait status.
func (p *Proc) Wait(t *testing.T, d time.Duration) syscall.WaitStatus {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s still running after %v", p.Name, d)
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		t.Fatalf("%s: wait: %v", p.Name, p.err)
	}
	return p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// Exited reports whether the program has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Port returns the port of an "ADDR:PORT" address.
func Port(t *testing.T, addr string) int {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	n, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		t.Fatalf("port of %q: %v", addr, err)
	}
	return n
}

// Self returns the running test binary, for re-executing it under another argv[0].
func Self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("executable: %v", err)
	}
	return exe
}
