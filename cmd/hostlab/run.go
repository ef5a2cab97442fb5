package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/scenario"
)

func newScenariosCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scenarios",
		Short: "List the fault scenarios",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			for _, s := range scenario.Catalogue {
				fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.Summary)
			}
			return tw.Flush()
		},
	}
}

// runFlags are hostlab run's flags.
type runFlags struct {
	lab       string
	out       string
	asJSON    bool
	check     bool
	client    string
	keepalive string
	opt       scenario.Options
	up        upFlags
}

// Exit statuses of hostlab run --check for a completed run whose verdict is
// not expected.
const (
	exitUnexpected = 3
	exitUnknown    = 4
)

// verdictStatus is hostlab run --check's exit status for a verdict: 0 for
// expected, 3 for unexpected, 4 for unknown (and anything unrecognised).
func verdictStatus(v model.Verdict) int {
	switch v {
	case model.Expected:
		return 0
	case model.Unexpected:
		return exitUnexpected
	}
	return exitUnknown
}

// registerVariant adds the flags that make a scenario's variant (the
// client, its socket options, sysctls, the fault's own options).
func (f *runFlags) registerVariant(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.client, "client", "", "client: go, classic (C str_cli) or the path of your own static binary (default per scenario)")
	fl.StringVar(&f.opt.Read, "read", "", "client read discipline: blocking (str_cli) or event (poll)")
	fl.StringVar(&f.keepalive, "keepalive", "", "SO_KEEPALIVE on the client: IDLE,INTVL,CNT, e.g. 5s,2s,3")
	fl.DurationVar(&f.opt.UserTimeout, "user-timeout", 0, "TCP_USER_TIMEOUT on the client socket")
	fl.DurationVar(&f.opt.ReadTimeout, "read-timeout", 0, "deadline on each client read")
	fl.BoolVar(&f.opt.Idle, "idle", false, "the client connects, then stays silent")
	fl.DurationVar(&f.opt.Interval, "interval", 0, "pause between the client's lines (default 1s; hang-server: between its flood blocks, 20ms)")
	fl.StringArrayVar(&f.opt.Sysctls, "sysctl", nil, "ROLE:KEY=VALUE applied before connect and read back, e.g. client:net.ipv4.tcp_retries2=5 (repeatable)")
	fl.StringVar(&f.opt.ServerSigterm, "server-sigterm", "", "echo server on SIGTERM: close, ignore or default")
	fl.BoolVar(&f.opt.SigpipeIgnore, "sigpipe-ignore", false, "the classic client ignores SIGPIPE (write fails with EPIPE)")
	fl.StringVar(&f.opt.Reboot, "reboot", "", "crash-reboot: reset or power-cycle")
	fl.DurationVar(&f.opt.Down, "down", 0, "crash-reboot --reboot power-cycle: time the server stays off (5s)")
	fl.StringVar(&f.opt.Target, "target", "", "connect-dead: what the client connects to, off (the server powered off) or no-listener (up, nothing listening)")
	fl.StringVar(&f.opt.Neigh, "neigh", "", "connect-dead: the client's ARP entry for the server before the connect, warm (resolved) or cold (flushed)")
	fl.DurationVar(&f.opt.MaxWait, "max-wait", 0, "stop watching the client after this long (default: the scenario's bound)")
}

// options resolves the variant flags into scenario options.
func (f *runFlags) options() (scenario.Options, error) {
	opt := f.opt
	opt.Client = scenario.Client(f.client)
	if f.client != "" && f.client != "go" && f.client != "classic" {
		abs, err := filepath.Abs(f.client)
		if err != nil {
			return opt, err
		}
		if _, err := os.Stat(abs); err != nil {
			return opt, fmt.Errorf("--client %q is not go, classic or an existing file: %w", f.client, err)
		}
		opt.Client = scenario.Client(abs)
	}
	opt.Keepalive = f.keepalive
	return opt, opt.Validate()
}

// parseVariant parses variant flags as typed after `hostlab run SCENARIO`
// into options, with run's checks.
func parseVariant(args []string) (scenario.Options, error) {
	f := &runFlags{}
	cmd := &cobra.Command{Use: "run", SilenceErrors: true, SilenceUsage: true}
	f.registerVariant(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		return scenario.Options{}, err
	}
	if rest := cmd.Flags().Args(); len(rest) > 0 {
		return scenario.Options{}, fmt.Errorf("variant %q: unexpected arguments %q", strings.Join(args, " "), rest)
	}
	if err := checkDurations(cmd); err != nil {
		return scenario.Options{}, err
	}
	return f.options()
}

func newRunCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Run a fault scenario and report what the client saw, against theory",
		Long: `Runs a scenario in a lab (brought up if it is not), does the fault at a recorded instant,
watches the client, heals the lab and writes the evidence to a run folder.
Exit status 0 when the run completed, whatever the verdict; with --check, 0 only when
the verdict is expected, 3 when it is unexpected, 4 when it is unknown (the result is
printed and written first). 1 when the run could not be carried out, 130 on Ctrl-C.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := scenario.Lookup(args[0])
			if err != nil {
				return err
			}
			if err := checkDurations(cmd); err != nil {
				return err
			}
			opt, err := f.options()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if s.Routed {
				// A routed lab is its own lab; "routed" unless named.
				if !cmd.Flags().Changed("lab") {
					f.lab = "routed"
				}
				f.up.routed = true
			}
			f.up.name = f.lab
			cfg, err := f.up.config(g)
			if err != nil {
				return err
			}
			l, err := lab.Open(ctx, cfg)
			if err == nil {
				for _, name := range []string{"grace", "memory", "accel", "kernel", "kernel-package", "modules"} {
					if cmd.Flags().Changed(name) {
						l.Close()
						return fmt.Errorf("--%s applies when a lab is brought up, and lab %s is already up: run `hostlab down --lab %s` first, or drop --%s", name, f.lab, f.lab, name)
					}
				}
			} else if errors.Is(err, lab.ErrNoLab) {
				g.logger().Info("bringing the lab up", "lab", f.lab)
				if l, err = lab.Up(ctx, cfg); err != nil {
					return err
				}
			} else {
				return err
			}
			defer l.Close()
			if s.Routed && !l.State.Routed {
				return fmt.Errorf("scenario %s needs a routed lab and lab %s has no router: use another --lab, or `hostlab up --lab NAME --routed`", s.Name, l.Name())
			}
			out := f.out
			if out == "" {
				out = filepath.Join(homeOf(g), "runs")
			}
			res, err := scenario.Execute(ctx, s, opt, scenario.Config{Lab: l, Out: out, Log: g.logger()})
			if err != nil {
				return err
			}
			if f.asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				fmt.Print(res.Summary())
			}
			if f.check {
				if code := verdictStatus(res.Verdict); code != 0 {
					return exitError{code}
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.lab, "lab", lab.DefaultName, "lab name (brought up if needed)")
	fl.StringVar(&f.out, "out", "", "folder for run folders (default HOME/runs)")
	fl.BoolVar(&f.asJSON, "json", false, "print result.json instead of the summary")
	fl.BoolVar(&f.check, "check", false, "exit status from the verdict: 0 expected, 3 unexpected, 4 unknown")
	f.registerVariant(cmd)
	f.up.register(cmd, false)
	return cmd
}
