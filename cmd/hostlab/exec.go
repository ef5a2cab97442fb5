package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/provision"
)

func newExecCmd(g *globals) *cobra.Command {
	var name string
	var tty bool
	cmd := &cobra.Command{
		Use:   "exec client|server [--lab NAME] -- CMD [ARG...]",
		Short: "Run a command in a guest; its exit status becomes hostlab's",
		Args:  execArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, closeAll, err := g.dialGuest(ctx, name, args[0])
			if err != nil {
				return err
			}
			defer closeAll()
			opts := provision.RunOptions{Stdout: os.Stdout, Stderr: os.Stderr, Pty: tty}
			if !term.IsTerminal(int(os.Stdin.Fd())) {
				opts.Stdin = os.Stdin
			}
			status, err := c.Run(ctx, shellJoin(args[1:]), opts)
			if err != nil {
				return fmt.Errorf("run on %s: %w", args[0], err)
			}
			if status != 0 {
				return exitError{status}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "lab", lab.DefaultName, "lab name")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	return cmd
}

func newSSHCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "ssh client|server [--lab NAME]",
		Short: "Open an interactive shell in a guest",
		Args:  exactArgs(1, "one guest, client or server"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, closeAll, err := g.dialGuest(ctx, name, args[0])
			if err != nil {
				return err
			}
			defer closeAll()
			fd := int(os.Stdin.Fd())
			w, h := 80, 24
			if term.IsTerminal(fd) {
				if tw, th, err := term.GetSize(fd); err == nil {
					w, h = tw, th
				}
				old, err := term.MakeRaw(fd)
				if err != nil {
					return fmt.Errorf("raw terminal: %w", err)
				}
				defer term.Restore(fd, old)
			}
			termName := os.Getenv("TERM")
			if termName == "" {
				termName = "xterm"
			}
			status, err := c.Shell(ctx, provision.ShellOptions{
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Term: termName,
				Size: provision.WindowSize{Width: w, Height: h},
			})
			if err != nil {
				return err
			}
			if status != 0 {
				return exitError{status}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "lab", lab.DefaultName, "lab name")
	return cmd
}

// shellJoin quotes args for /bin/sh -c so they arrive as given.
func shellJoin(args []string) string {
	if len(args) == 1 {
		return args[0] // A single argument is taken as a shell command line.
	}
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// dialGuest opens lab name and an SSH connection to its guest role; close
// releases both.
func (g *globals) dialGuest(ctx context.Context, name, role string) (*provision.Client, func(), error) {
	if err := lab.ValidateRole(role); err != nil {
		return nil, nil, err
	}
	l, err := lab.Open(ctx, g.labConfig(name))
	if err != nil {
		return nil, nil, err
	}
	c, err := l.Dial(ctx, role)
	if err != nil {
		l.Close()
		return nil, nil, fmt.Errorf("connect to %s of lab %s: %w", role, name, err)
	}
	return c, func() { c.Close(); l.Close() }, nil
}
