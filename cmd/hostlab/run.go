package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab"
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
	client    string
	keepalive string
	opt       scenario.Options
	up        upFlags
}

func newRunCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Run a fault scenario and report what the client saw, against theory",
		Long: `Runs a scenario in a lab (brought up if it is not), does the fault at a recorded instant,
watches the client, heals the lab and writes the evidence to a run folder.
Exit status 0 when the run completed, whatever the verdict; non-zero when it could not run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := scenario.Lookup(args[0])
			if err != nil {
				return err
			}
			f.opt.Client = scenario.Client(f.client)
			if f.client != "" && f.client != "go" && f.client != "classic" {
				abs, err := filepath.Abs(f.client)
				if err != nil {
					return err
				}
				if _, err := os.Stat(abs); err != nil {
					return fmt.Errorf("--client %q is not go, classic or an existing file: %w", f.client, err)
				}
				f.opt.Client = scenario.Client(abs)
			}
			f.opt.Keepalive = f.keepalive
			if err := f.opt.Validate(); err != nil {
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
			res, err := scenario.Execute(ctx, s, f.opt, scenario.Config{Lab: l, Out: out, Log: g.logger()})
			if err != nil {
				return err
			}
			if f.asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Print(res.Summary())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.lab, "lab", lab.DefaultName, "lab name (brought up if needed)")
	fl.StringVar(&f.out, "out", "", "folder for run folders (default HOME/runs)")
	fl.BoolVar(&f.asJSON, "json", false, "print result.json instead of the summary")
	fl.StringVar(&f.client, "client", "", "client: go, classic (C str_cli) or the path of your own static binary (default per scenario)")
	fl.StringVar(&f.opt.Read, "read", "", "client read discipline: blocking (str_cli) or event (poll)")
	fl.StringVar(&f.keepalive, "keepalive", "", "SO_KEEPALIVE on the client: IDLE,INTVL,CNT, e.g. 5s,2s,3")
	fl.DurationVar(&f.opt.UserTimeout, "user-timeout", 0, "TCP_USER_TIMEOUT on the client socket")
	fl.DurationVar(&f.opt.ReadTimeout, "read-timeout", 0, "deadline on each client read")
	fl.BoolVar(&f.opt.Idle, "idle", false, "the client connects, then stays silent")
	fl.DurationVar(&f.opt.Interval, "interval", time.Second, "pause between the client's lines")
	fl.StringArrayVar(&f.opt.Sysctls, "sysctl", nil, "ROLE:KEY=VALUE applied before connect and read back, e.g. client:net.ipv4.tcp_retries2=5 (repeatable)")
	fl.StringVar(&f.opt.ServerSigterm, "server-sigterm", "", "echo server on SIGTERM: close, ignore or default")
	fl.BoolVar(&f.opt.SigpipeIgnore, "sigpipe-ignore", false, "the classic client ignores SIGPIPE (write fails with EPIPE)")
	fl.StringVar(&f.opt.Reboot, "reboot", "", "crash-reboot: reset or power-cycle")
	fl.DurationVar(&f.opt.Down, "down", 0, "crash-reboot --reboot power-cycle: time the server stays off (5s)")
	fl.DurationVar(&f.opt.MaxWait, "max-wait", 0, "stop watching the client after this long (default: the scenario's bound)")
	f.up.register(cmd, false)
	return cmd
}
