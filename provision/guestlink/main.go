package guestlink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// Name is the argv[0] basename under which the multi-call binary runs Main.
const Name = "hostlab-link"

// IFBName is the IFB device apply creates to condition received frames.
const IFBName = "hostlab-ifb0"

// Exit statuses of hostlab-link besides 0.
const (
	ExitFailed  = 1
	ExitUsage   = 2
	ExitMissing = 3
)

// ErrMissing marks a piece the guest kernel lacks (a qdisc, classifier,
// action or the ifb device).
var ErrMissing = errors.New("the guest kernel lacks it")

// Request is what apply reads on stdin: the interface and the conditions
// for each direction (nil: none).
type Request struct {
	MAC     string `json:"mac"`
	Egress  *Netem `json:"egress,omitempty"`
	Ingress *Netem `json:"ingress,omitempty"`
}

// Report is what apply and show print: the interface and the conditions in
// force on it, read back from the kernel ("none" for a direction without).
type Report struct {
	Dev     string `json:"dev"`
	Egress  string `json:"egress"`
	Ingress string `json:"ingress"`
}

const usage = "usage: " + Name + " apply (JSON request on stdin) | clear MAC | show MAC"

// Main runs hostlab-link with the given arguments (without argv[0]) and
// returns its exit status.
func Main(args []string) int {
	return run(args, os.Stdin, os.Stdout, os.Stderr)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: %v\n", Name, err)
		switch {
		case errors.Is(err, ErrMissing):
			return ExitMissing
		case errors.Is(err, ErrBadSpec):
			return ExitUsage
		}
		return ExitFailed
	}
	if len(args) == 0 {
		return fail(fmt.Errorf("%w: %s", ErrBadSpec, usage))
	}
	var (
		rep Report
		err error
	)
	switch {
	case args[0] == "apply" && len(args) == 1:
		var req Request
		if derr := json.NewDecoder(stdin).Decode(&req); derr != nil {
			return fail(fmt.Errorf("%w: apply: stdin is not a JSON request: %v", ErrBadSpec, derr))
		}
		mac, perr := net.ParseMAC(req.MAC)
		if perr != nil {
			return fail(fmt.Errorf("%w: apply: mac %q: %v", ErrBadSpec, req.MAC, perr))
		}
		for _, n := range []*Netem{req.Egress, req.Ingress} {
			if n != nil {
				if _, serr := ParseNetem(n.String()); serr != nil && !n.IsZero() {
					return fail(serr)
				}
			}
		}
		rep, err = Apply(mac, req.Egress, req.Ingress)
	case (args[0] == "clear" || args[0] == "show") && len(args) == 2:
		mac, perr := net.ParseMAC(args[1])
		if perr != nil {
			return fail(fmt.Errorf("%w: %s: mac %q: %v", ErrBadSpec, args[0], args[1], perr))
		}
		if args[0] == "clear" {
			rep, err = Clear(mac)
		} else {
			rep, err = Show(mac)
		}
	default:
		return fail(fmt.Errorf("%w: %s", ErrBadSpec, usage))
	}
	if err != nil {
		return fail(err)
	}
	b, _ := json.Marshal(rep)
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}
