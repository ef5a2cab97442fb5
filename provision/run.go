package provision

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// RunOptions are the streams and settings of a remote command.
type RunOptions struct {
	// Stdin feeds the command's standard input; nil means empty.
	Stdin io.Reader
	// Stdout receives standard output; nil discards it.
	Stdout io.Writer
	// Stderr receives standard error; nil discards it.
	Stderr io.Writer
	// Env is exported by the remote shell before the command runs.
	Env map[string]string
	// Pty requests a pseudo-terminal (80x24, TERM=xterm) for the command.
	Pty bool
}

// ExitSignalError reports a remote command killed by a signal.
type ExitSignalError struct {
	// Signal is the SSH signal name without "SIG", e.g. "KILL".
	Signal string
	// Cmd is the command that was run.
	Cmd string
}

// Error implements error.
func (e *ExitSignalError) Error() string {
	return fmt.Sprintf("remote command %q killed by signal %s", e.Cmd, e.Signal)
}

// ExitError reports a non-zero exit status from Output.
type ExitError struct {
	// Cmd is the command that was run.
	Cmd string
	// Status is the exit status.
	Status int
	// Stderr is the end of the command's standard error.
	Stderr string
}

// Error implements error.
func (e *ExitError) Error() string {
	return fmt.Sprintf("remote command %q: exit status %d: %s", e.Cmd, e.Status, e.Stderr)
}

// cancelGrace is how long Run waits, after a cancellation, for the session
// to wind down; after it, output may still arrive in the caller's writers
// until the connection closes.
const cancelGrace = 2 * time.Second

// signalNumbers maps SSH signal names to Linux numbers, for 128+n statuses.
var signalNumbers = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8, "KILL": 9,
	"USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
}

// envName matches the variable names Run accepts.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Run runs cmd through the guest's shell and returns its exit status.
//
// A command that exits, with any status, returns (status, nil). A command
// killed by a signal returns (128+signal number, *ExitSignalError), as a
// shell would report it. Transport failures return (-1, err). When ctx is
// done, the command is sent SIGKILL, the session closed once it ends (or
// after cancelGrace) and ctx's error returned with status -1. Run is Start
// followed by Wait, plus the option of a pty.
func (c *Client) Run(ctx context.Context, cmd string, opts RunOptions) (int, error) {
	p, err := c.start(ctx, cmd, opts)
	if err != nil {
		return -1, err
	}
	return p.Wait()
}

// waitSession waits for a started session and interprets how it ended.
func waitSession(ctx context.Context, s *ssh.Session, cmd, addr string) (int, error) {
	return watchSession(ctx, s, cmd, addr).Wait()
}

// withEnv prefixes cmd with shell exports of env, sorted by name. Exports
// work with any server, while SSH "env" requests are often refused.
func withEnv(cmd string, env map[string]string) (string, error) {
	if len(env) == 0 {
		return cmd, nil
	}
	names := make([]string, 0, len(env))
	for k := range env {
		if !envName.MatchString(k) {
			return "", fmt.Errorf("run %q: invalid environment variable name %q", cmd, k)
		}
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "export %s=%s; ", k, shellQuote(env[k]))
	}
	return b.String() + cmd, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Output runs cmd and returns its standard output. A non-zero exit status
// yields an *ExitError carrying the end of standard error.
func (c *Client) Output(ctx context.Context, cmd string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	status, err := c.Run(ctx, cmd, RunOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return stdout.Bytes(), err
	}
	if status != 0 {
		return stdout.Bytes(), &ExitError{Cmd: cmd, Status: status, Stderr: tail(stderr.String(), 512)}
	}
	return stdout.Bytes(), nil
}

// tail returns the last n bytes of s, trimmed.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}
