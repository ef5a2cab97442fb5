package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/runflags"
	"github.com/hostlab/hostlab/lab/scenario"
)

func newScenariosCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scenarios",
		Short: "List the fault scenarios",
		Args:  noArgs,
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
	lab     string
	out     string
	asJSON  bool
	check   bool
	variant *runflags.Variant
	up      upFlags
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

// parseVariant parses variant flags as typed after `hostlab run SCENARIO`
// into options, with run's checks.
func parseVariant(args []string) (scenario.Options, error) {
	p, err := runflags.Parse(args, "")
	return p.Options, err
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
		Args: exactArgs(1, "one SCENARIO (hostlab scenarios lists them)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := scenario.Lookup(args[0])
			if err != nil {
				return err
			}
			if err := checkDurations(cmd); err != nil {
				return err
			}
			opt, err := f.variant.Options("")
			if err != nil {
				return err
			}
			// Everything the run refuses is refused before a lab is
			// brought up for it.
			if err := scenario.CheckOwn(s, opt); err != nil {
				return err
			}
			out := f.out
			if out == "" {
				out = filepath.Join(homeOf(g), "runs")
			}
			if out, err = filepath.Abs(out); err != nil {
				return err
			}
			if err := checkOutDir("--out", out); err != nil {
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
	f.variant = runflags.Register(fl)
	f.up.register(cmd, false)
	return cmd
}
