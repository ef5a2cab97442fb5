package runflags

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/hostlab/hostlab/lab/scenario"
	"github.com/hostlab/hostlab/provision"
)

// Variant holds the values of the variant flags registered on a flag set.
type Variant struct {
	client    string
	keepalive string
	opt       scenario.Options
	fs        *pflag.FlagSet
}

// Register adds the variant flags — the client, its socket options,
// sysctls, the fault's own options — to fs and returns where their values
// go.
func Register(fs *pflag.FlagSet) *Variant {
	v := &Variant{fs: fs}
	fs.StringVar(&v.client, "client", "", "client: go, classic (C str_cli) or the path of your own static binary (default per scenario)")
	fs.StringVar(&v.opt.Read, "read", "", "client read discipline: blocking (str_cli) or event (poll)")
	fs.StringVar(&v.keepalive, "keepalive", "", "SO_KEEPALIVE on the client: IDLE,INTVL,CNT, e.g. 5s,2s,3")
	fs.DurationVar(&v.opt.UserTimeout, "user-timeout", 0, "TCP_USER_TIMEOUT on the client socket")
	fs.DurationVar(&v.opt.ReadTimeout, "read-timeout", 0, "deadline on each client read")
	fs.BoolVar(&v.opt.Idle, "idle", false, "the client connects, then stays silent")
	fs.DurationVar(&v.opt.Interval, "interval", 0, "pause between the client's lines (default 1s; hang-server: between its flood blocks, 20ms)")
	fs.StringArrayVar(&v.opt.Sysctls, "sysctl", nil, "ROLE:KEY=VALUE applied before connect and read back, e.g. client:net.ipv4.tcp_retries2=5 (repeatable)")
	fs.StringVar(&v.opt.ServerSigterm, "server-sigterm", "", "echo server on SIGTERM: close, ignore or default")
	fs.BoolVar(&v.opt.SigpipeIgnore, "sigpipe-ignore", false, "the classic client ignores SIGPIPE (write fails with EPIPE)")
	fs.StringVar(&v.opt.Reboot, "reboot", "", "crash-reboot: reset or power-cycle")
	fs.DurationVar(&v.opt.Down, "down", 0, "crash-reboot --reboot power-cycle: time the server stays off (5s); partition: time the link stays cut (5s)")
	fs.StringVar(&v.opt.Target, "target", "", "connect-dead: what the client connects to, off (the server powered off) or no-listener (up, nothing listening)")
	fs.StringVar(&v.opt.Neigh, "neigh", "", "connect-dead: the client's ARP entry for the server before the connect, warm (resolved) or cold (flushed)")
	fs.StringArrayVar(&v.opt.Link, "link", nil, "link conditions in netem's words, e.g. 'delay 50ms loss 2%' (both directions), or 'to-server:SPEC' / 'to-client:SPEC' (repeatable)")
	fs.DurationVar(&v.opt.MaxWait, "max-wait", 0, "stop watching the client after this long (default: the scenario's bound)")
	return v
}

// Options resolves the flags into checked scenario options. A --client
// that is neither go nor classic is a file; a relative path is taken from
// dir ("" for the working directory).
func (v *Variant) Options(dir string) (scenario.Options, error) {
	opt := v.opt
	if v.client == "" && v.fs.Changed("client") {
		return opt, fmt.Errorf("--client \"\": give go, classic or the path of your own static binary")
	}
	opt.Client = scenario.Client(v.client)
	if v.client != "" && v.client != "go" && v.client != "classic" {
		path := v.client
		if dir != "" && !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return opt, err
		}
		if _, err := os.Stat(abs); err != nil {
			return opt, fmt.Errorf("--client %q is not go, classic or an existing file: %w", v.client, err)
		}
		// It runs in the client guest, which has no libc: check now,
		// not after the lab is up.
		if err := provision.CheckGuestExecutable(abs); err != nil {
			return opt, fmt.Errorf("--client %q cannot run in the guest: %w: give a static x86-64 binary (CGO_ENABLED=0, or cc -static) or a #! script", v.client, err)
		}
		opt.Client = scenario.Client(abs)
	}
	opt.Keepalive = v.keepalive
	return opt, opt.Validate()
}

// Names lists the variant flags' names, in the order hostlab run's help
// shows them.
func Names() []string {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SortFlags = false
	Register(fs)
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	return names
}

// Parsed is a variant parsed from hostlab run's flags.
type Parsed struct {
	// Options are the scenario options the flags give.
	Options scenario.Options
	// Canonical is the variant as flags in one form whatever the spelling:
	// sorted by name, each as --name=VALUE with VALUE as the flag prints
	// it (6000ms is 6s), a bool as --name or --name=false, a repeated flag
	// once per value in the order given.
	Canonical []string
}

// Parse parses args as typed after `hostlab run SCENARIO` into options,
// with run's checks: an unknown flag, a stray argument, a bad value or a
// duration that makes no sense is refused with one line naming the flag.
// A relative --client path is taken from dir ("" for the working
// directory).
func Parse(args []string, dir string) (Parsed, error) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v := Register(fs)
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			err = fmt.Errorf("unknown flag: --help")
		}
		return Parsed{}, err
	}
	if rest := fs.Args(); len(rest) > 0 {
		return Parsed{}, fmt.Errorf("variant %q: unexpected arguments %q", strings.Join(args, " "), rest)
	}
	if err := CheckDurations(fs); err != nil {
		return Parsed{}, err
	}
	opt, err := v.Options(dir)
	if err != nil {
		return Parsed{}, err
	}
	return Parsed{Options: opt, Canonical: canonical(fs)}, nil
}

// canonical lists the flags set in fs in canonical form (see Parsed).
func canonical(fs *pflag.FlagSet) []string {
	var out []string
	fs.Visit(func(f *pflag.Flag) { // lexicographical order
		switch f.Value.Type() {
		case "bool":
			if f.Value.String() == "true" {
				out = append(out, "--"+f.Name)
			} else {
				out = append(out, "--"+f.Name+"="+f.Value.String())
			}
		case "stringArray":
			for _, s := range f.Value.(pflag.SliceValue).GetSlice() {
				out = append(out, "--"+f.Name+"="+s)
			}
		default:
			out = append(out, "--"+f.Name+"="+f.Value.String())
		}
	})
	return out
}
