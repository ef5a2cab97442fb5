package guestsysctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Name is the argv[0] basename under which the multi-call binary runs Main.
const Name = "hostlab-sysctl"

// usage is printed on a usage error.
const usage = "usage: " + Name + " apply (JSON object of KEY: VALUE on stdin) | restore | get KEY [KEY …]"

// Main runs hostlab-sysctl with the given arguments (without argv[0]) on the
// guest's table, stdin and stdout, and returns its exit status.
func Main(args []string) int {
	return run(Guest(), args, os.Stdin, os.Stdout, os.Stderr)
}

// run is Main on any table and streams.
func run(t Table, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(status int, err error) int {
		fmt.Fprintf(stderr, "%s: %v\n", Name, err)
		return status
	}
	if len(args) == 0 {
		return fail(2, errors.New(usage))
	}
	var (
		out any
		err error
	)
	switch args[0] {
	case "apply":
		if len(args) != 1 {
			return fail(2, errors.New(usage))
		}
		var set Values
		dec := json.NewDecoder(stdin)
		if derr := dec.Decode(&set); derr != nil {
			return fail(2, fmt.Errorf("apply: stdin is not a JSON object of KEY: VALUE strings: %w", derr))
		}
		out, err = t.Apply(set)
	case "restore":
		if len(args) != 1 {
			return fail(2, errors.New(usage))
		}
		out, err = t.Restore()
	case "get":
		var vals Values
		if vals, err = t.Get(args[1:]); err == nil {
			out = vals
		}
	default:
		return fail(2, errors.New(usage))
	}
	if errors.Is(err, ErrBadKey) {
		return fail(2, err)
	}
	if out != nil {
		b, merr := json.Marshal(out)
		if merr == nil {
			fmt.Fprintf(stdout, "%s\n", b)
		}
	}
	if err != nil {
		return fail(1, fmt.Errorf("%s: %w", args[0], err))
	}
	return 0
}
