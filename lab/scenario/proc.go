package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/provision"
)

// proc is a program the run started in a guest: its raw output is saved to
// the run folder and its JSON events parsed as they arrive.
type proc struct {
	name string
	role string
	p    *provision.Process
	out  *os.File
	errf *os.File
	lw   *provision.LineWriter

	mu     sync.Mutex
	events []echo.Event
	lines  [][]byte
	notify chan struct{}

	status int
	err    error
	exitAt time.Time
}

// startProc starts cmd in the guest behind c, saving stdout to NAME.jsonl
// and stderr to NAME.stderr in dir.
func startProc(ctx context.Context, c *provision.Client, dir, name, role, cmd string) (*proc, error) {
	out, err := os.Create(filepath.Join(dir, name+".jsonl"))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	errf, err := os.Create(filepath.Join(dir, name+".stderr"))
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pr := &proc{name: name, role: role, out: out, errf: errf, notify: make(chan struct{}, 1)}
	pr.lw = provision.NewLineWriter(pr.line)
	p, err := c.Start(ctx, cmd, provision.StartOptions{Stdout: io.MultiWriter(out, pr.lw), Stderr: errf})
	if err != nil {
		out.Close()
		errf.Close()
		return nil, fmt.Errorf("start %s in %s: %w", name, role, err)
	}
	pr.p = p
	go func() {
		st, err := p.Wait()
		pr.lw.Close()
		pr.mu.Lock()
		pr.status, pr.err, pr.exitAt = st, err, time.Now()
		pr.mu.Unlock()
		pr.out.Close()
		pr.errf.Close()
		pr.poke()
	}()
	return pr, nil
}

func (pr *proc) poke() {
	select {
	case pr.notify <- struct{}{}:
	default:
	}
}

// line records one line of output; JSON lines become events.
func (pr *proc) line(b []byte) {
	cp := append([]byte(nil), b...)
	var ev echo.Event
	ok := json.Unmarshal(cp, &ev) == nil && ev.Ev != ""
	pr.mu.Lock()
	pr.lines = append(pr.lines, cp)
	if ok {
		pr.events = append(pr.events, ev)
	}
	pr.mu.Unlock()
	pr.poke()
}

// snapshot returns the events so far.
func (pr *proc) snapshot() []echo.Event {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return append([]echo.Event(nil), pr.events...)
}

// rawLines returns the output lines so far.
func (pr *proc) rawLines() [][]byte {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return append([][]byte(nil), pr.lines...)
}

// exited reports the exit, if it happened.
func (pr *proc) exited() (procExit, bool) {
	if pr.p == nil {
		return procExit{}, false // Not started (or a test's record).
	}
	select {
	case <-pr.p.Done():
	default:
		return procExit{}, false
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.exitAt.IsZero() {
		return procExit{}, false
	}
	return procExit{Status: pr.status, Err: pr.err, At: pr.exitAt}, true
}

// procExit is how and when a guest program ended (see Process.Wait).
type procExit struct {
	Status int
	Err    error
	At     time.Time
}

// waitFor waits until match finds an event, the process exits, or ctx ends.
func (pr *proc) waitFor(ctx context.Context, what string, match func([]echo.Event) bool) error {
	for {
		if match(pr.snapshot()) {
			return nil
		}
		if ex, done := pr.exited(); done {
			return fmt.Errorf("%s exited (status %d, %v) before %s; see %s", pr.name, ex.Status, ex.Err, what, pr.out.Name())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s of %s: %w", what, pr.name, ctx.Err())
		case <-pr.notify:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop kills the process if it still runs.
func (pr *proc) stop() {
	if pr == nil || pr.p == nil {
		return
	}
	if _, done := pr.exited(); !done {
		_ = pr.p.Signal(ssh.SIGKILL)
		_ = pr.p.Kill()
		select {
		case <-pr.p.Done():
		case <-time.After(3 * time.Second):
		}
	}
}

// countEv counts events named ev.
func countEv(evs []echo.Event, ev string) int {
	n := 0
	for _, e := range evs {
		if e.Ev == ev {
			n++
		}
	}
	return n
}
