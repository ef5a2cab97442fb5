package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// StartOptions configure a remote process.
type StartOptions struct {
	// Stdout receives standard output as it arrives; nil discards it.
	Stdout io.Writer
	// Stderr receives standard error as it arrives; nil discards it.
	Stderr io.Writer
	// Stdin feeds the process's standard input; nil means empty.
	Stdin io.Reader
	// Env is exported by the remote shell before the command runs.
	Env map[string]string
}

// Process is a command running in a guest, started by Client.Start.
type Process struct {
	s         *ssh.Session
	cmd, addr string
	kill      chan struct{} // closed by Kill
	killOnce  sync.Once
	done      chan struct{} // closed once status and err are set
	status    int
	err       error
}

// Start runs cmd in the guest (via /bin/sh -c on the guest's sshd) and
// returns at once; output is copied to the writers as it arrives. When ctx
// is done the process is killed as by Kill and Wait returns ctx's error.
func (c *Client) Start(ctx context.Context, cmd string, opts StartOptions) (*Process, error) {
	return c.start(ctx, cmd, RunOptions{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Env: opts.Env})
}

// start opens a session, starts cmd in it and watches it.
func (c *Client) start(ctx context.Context, cmd string, opts RunOptions) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run %q on %s: %w", cmd, c.addr, err)
	}
	script, err := withEnv(cmd, opts.Env)
	if err != nil {
		return nil, err
	}
	s, err := c.ssh.NewSession()
	if err != nil {
		return nil, fmt.Errorf("run %q on %s: new session: %w", cmd, c.addr, err)
	}
	s.Stdin, s.Stdout, s.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	if opts.Pty {
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
			s.Close()
			return nil, fmt.Errorf("run %q on %s: request pty: %w", cmd, c.addr, err)
		}
	}
	if err := s.Start(script); err != nil {
		s.Close()
		return nil, fmt.Errorf("run %q on %s: %w", cmd, c.addr, err)
	}
	return watchSession(ctx, s, cmd, c.addr), nil
}

// watchSession wraps a started session in a Process that records how it
// ends and kills it when ctx is done.
func watchSession(ctx context.Context, s *ssh.Session, cmd, addr string) *Process {
	p := &Process{s: s, cmd: cmd, addr: addr, kill: make(chan struct{}), done: make(chan struct{})}
	go p.watch(ctx)
	return p
}

// watch waits for the session to end, or for a kill or ctx, and closes it.
func (p *Process) watch(ctx context.Context) {
	defer close(p.done)
	defer p.s.Close()
	exited := make(chan error, 1)
	go func() { exited <- p.s.Wait() }()
	select {
	case err := <-exited:
		p.status, p.err = exitResult(err, p.cmd, p.addr)
		return
	case <-p.kill:
	case <-ctx.Done():
		_ = p.s.Signal(ssh.SIGKILL)
	}
	// A frozen guest never reports the exit; don't hang on it.
	t := time.NewTimer(cancelGrace)
	defer t.Stop()
	select {
	case err := <-exited:
		p.status, p.err = exitResult(err, p.cmd, p.addr)
	case <-t.C:
		p.status, p.err = -1, fmt.Errorf("run %q on %s: killed, but no exit reported within %s", p.cmd, p.addr, cancelGrace)
	}
	if ctx.Err() != nil {
		p.status, p.err = -1, fmt.Errorf("run %q on %s: %w", p.cmd, p.addr, ctx.Err())
	}
}

// exitResult interprets how a session ended, with Run's conventions.
func exitResult(err error, cmd, addr string) (int, error) {
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit) && exit.Signal() != "":
		return 128 + signalNumbers[exit.Signal()], &ExitSignalError{Signal: exit.Signal(), Cmd: cmd}
	case errors.As(err, &exit):
		return exit.ExitStatus(), nil
	}
	return -1, fmt.Errorf("run %q on %s: %w", cmd, addr, err)
}

// Wait waits for the process to end and returns its status with Run's
// conventions: (status, nil) for an exit, (128+signal, *ExitSignalError)
// when killed by a signal, (-1, err) for a transport failure or a done ctx.
func (p *Process) Wait() (status int, err error) {
	<-p.done
	return p.status, p.err
}

// Done is closed once the process has ended and Wait would not block.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process (the guest's sshd delivers it to the
// process group); after the end it returns an error wrapping os.ErrProcessDone.
func (p *Process) Signal(sig ssh.Signal) error {
	select {
	case <-p.done:
		return fmt.Errorf("signal %s to %q on %s: %w", sig, p.cmd, p.addr, os.ErrProcessDone)
	default:
	}
	if err := p.s.Signal(sig); err != nil {
		return fmt.Errorf("signal %s to %q on %s: %w", sig, p.cmd, p.addr, err)
	}
	return nil
}

// Kill sends SIGKILL and returns at once; the session is closed when the
// exit is reported, or after cancelGrace if the guest stays silent. Killing
// an ended process does nothing.
func (p *Process) Kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	err := p.Signal(ssh.SIGKILL)
	p.killOnce.Do(func() { close(p.kill) })
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// LineWriter is an io.WriteCloser that calls a function with each complete
// line written to it; it is safe for concurrent use, e.g. as both Stdout
// and Stderr.
type LineWriter struct {
	mu   sync.Mutex
	fn   func(line []byte)
	part []byte
}

// NewLineWriter returns a LineWriter calling fn with each line, without
// its "\n"; line is only valid during the call.
func NewLineWriter(fn func(line []byte)) *LineWriter {
	return &LineWriter{fn: fn}
}

// Write calls the function for each line p completes and keeps the rest.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		if len(w.part) > 0 {
			w.part = append(w.part, p[:i]...)
			w.fn(w.part)
			w.part = w.part[:0]
		} else {
			w.fn(p[:i])
		}
		p = p[i+1:]
	}
	w.part = append(w.part, p...)
	return n, nil
}

// Close calls the function with a last line lacking its "\n", if any.
func (w *LineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.part) > 0 {
		w.fn(w.part)
		w.part = w.part[:0]
	}
	return nil
}
