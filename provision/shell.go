package provision

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"
)

// WindowSize is a terminal size in character cells.
type WindowSize struct {
	// Width is the number of columns.
	Width int
	// Height is the number of rows.
	Height int
}

// ShellOptions configure an interactive shell.
type ShellOptions struct {
	// Stdin, Stdout and Stderr are the local terminal's streams, usually in
	// raw mode (the caller's job).
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Term is the TERM value; empty means "xterm".
	Term string
	// Size is the initial window size; zero means 80x24.
	Size WindowSize
	// Resize, if not nil, delivers window size changes to forward.
	Resize <-chan WindowSize
}

// Shell runs an interactive login shell on a pseudo-terminal and returns
// its exit status, with the same conventions as Run.
func (c *Client) Shell(ctx context.Context, opts ShellOptions) (int, error) {
	if opts.Term == "" {
		opts.Term = "xterm"
	}
	if opts.Size.Width <= 0 || opts.Size.Height <= 0 {
		opts.Size = WindowSize{Width: 80, Height: 24}
	}
	s, err := c.ssh.NewSession()
	if err != nil {
		return -1, fmt.Errorf("shell on %s: new session: %w", c.addr, err)
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := s.RequestPty(opts.Term, opts.Size.Height, opts.Size.Width, modes); err != nil {
		return -1, fmt.Errorf("shell on %s: request pty: %w", c.addr, err)
	}
	if err := s.Shell(); err != nil {
		return -1, fmt.Errorf("shell on %s: %w", c.addr, err)
	}
	if opts.Resize != nil {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case ws, ok := <-opts.Resize:
					if !ok {
						return
					}
					_ = s.WindowChange(ws.Height, ws.Width)
				}
			}
		}()
	}
	return waitSession(ctx, s, "shell", c.addr)
}
