package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// noArgs refuses positional arguments with a one-line error naming them and
// the fix.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q: give options as flags (see `%s --help`)", cmd.CommandPath(), args, cmd.CommandPath())
	}
	return nil
}

// exactArgs wants n positional arguments, named what (e.g. "SCENARIO"), and
// refuses others with a one-line error naming them and the fix.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return fmt.Errorf("%s needs %s (see `%s --help`)", cmd.CommandPath(), what, cmd.CommandPath())
		case len(args) > n:
			return fmt.Errorf("%s takes %s, got also %q: give options as flags (see `%s --help`)", cmd.CommandPath(), what, args[n:], cmd.CommandPath())
		}
		return nil
	}
}

// checkOutDir checks that dir (given as flag) is a folder hostlab can write
// in, or can be created: its nearest existing ancestor must be a folder
// this process can create a folder in (tried, then removed: nothing is left
// behind).
func checkOutDir(flag, dir string) error {
	p := dir
	for {
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("%s %s: %s is not a folder: give a folder", flag, dir, p)
		case err == nil:
			if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("%s %s: cannot write in %s (%v): give a writable folder", flag, dir, p, err)
			}
			// root passes access(2) where it still cannot create (/proc):
			// try, and leave nothing behind.
			probe, err := os.MkdirTemp(p, ".hostlab-probe-")
			if err != nil {
				return fmt.Errorf("%s %s: cannot create a folder in %s (%v): give a writable folder", flag, dir, p, errors.Unwrap(err))
			}
			return os.Remove(probe)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s %s: %v: give a writable folder", flag, dir, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("%s %s: no existing parent folder: give a writable folder", flag, dir)
		}
		p = parent
	}
}

// minArgs wants at least n positional arguments, named what (e.g. "a
// RUN_DIR"), and says so in one line when they are missing.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("%s needs %s (see `%s --help`)", cmd.CommandPath(), what, cmd.CommandPath())
		}
		return nil
	}
}

// execArgs wants a guest, then -- and the command: without the --, flags
// meant for the command would be taken as hostlab's.
func execArgs(cmd *cobra.Command, args []string) error {
	dash := cmd.ArgsLenAtDash()
	switch {
	case len(args) == 0 || dash == 0:
		return fmt.Errorf("%s needs a guest, client or server, before --: e.g. hostlab exec client -- uname -r", cmd.CommandPath())
	case dash < 0:
		return fmt.Errorf("%s %s: put the command after --, e.g. hostlab exec %s -- uname -r", cmd.CommandPath(), strings.Join(args, " "), args[0])
	case dash > 1:
		return fmt.Errorf("%s takes one guest before --, got %q: e.g. hostlab exec client -- uname -r", cmd.CommandPath(), args[:dash])
	case len(args) == 1:
		return fmt.Errorf("%s %s --: no command after --: e.g. hostlab exec %s -- uname -r", cmd.CommandPath(), args[0], args[0])
	}
	return nil
}
