package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/campaign"
	"github.com/hostlab/hostlab/provision"
)

func newCampaignCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "campaign",
		Short: "Overnight campaigns: every scenario × kernel × variant × repetition of one YAML file, resumable",
	}
	cmd.AddCommand(newCampaignRunCmd(g), newCampaignResumeCmd(g), newCampaignPlanCmd(g),
		newCampaignSummaryCmd(), newCampaignBenchCmd(g))
	return cmd
}

// campaignFlags are the runner's flags of campaign run and resume.
type campaignFlags struct {
	parallel    int
	labPrefix   string
	maxLateness time.Duration
	check       bool
}

func (f *campaignFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.parallel, "parallel", 1, fmt.Sprintf("labs running cells at once, each bound to one kernel (at most %d, and what RAM holds)", campaign.MaxParallel))
	fl.StringVar(&f.labPrefix, "lab-prefix", "", "name prefix of the campaign's labs (default camp-HASH- from the folder)")
	fl.DurationVar(&f.maxLateness, "max-lateness", campaign.DefaultMaxLateness, "lower the parallelism when a cell's timers fire later than this beyond their timer-wheel granule (negative: never)")
	fl.BoolVar(&f.check, "check", false, "exit status from the cells: 3 when one missed the budget or was unexpected, 4 when one was unknown")
}

// loadOptions resolves kernel packages with apt (and the kernel cache).
func loadOptions(g *globals) campaign.LoadOptions {
	cache := filepath.Join(homeOf(g), "cache")
	return campaign.LoadOptions{
		Resolve: func(ctx context.Context, pkg string) (string, error) {
			return provision.ResolveKernelPackage(ctx, cache, pkg)
		},
		Release: provision.PackageRelease,
	}
}

func newCampaignRunCmd(g *globals) *cobra.Command {
	f := &campaignFlags{}
	up := &upFlags{}
	var out string
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a campaign file: each cell one hostlab run, finished cells appended to DIR/results.jsonl",
		Long: `Reads the campaign file (scenarios, kernels, variants, repetitions, budget), refuses a
bad one — naming file, line and field — before any VM starts, writes the campaign folder
(campaign.yaml, campaign.json) and runs every cell on labs of its own, --parallel at once,
each lab bound to one kernel and reused across its cells. Each finished cell is appended
durably to results.jsonl; after Ctrl-C, a crash or kill -9, hostlab campaign resume DIR runs
only what is missing. Exit status 0 when every cell ran (with --check: 3 when a cell missed
the budget or was unexpected, 4 when one was unknown), 1 when cells could not be run,
130 on Ctrl-C.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDurations(cmd); err != nil {
				return err
			}
			if out == "" {
				base := strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0]))
				out = filepath.Join(homeOf(g), "campaigns", base+"-"+time.Now().UTC().Format("20060102T150405Z"))
			}
			ctx := cmd.Context()
			settings := campaign.LabSettings{MemoryMiB: up.memory, Accel: up.accel, Grace: up.grace}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read campaign file: %w", err)
			}
			spec, err := campaign.Load(ctx, args[0], data, loadOptions(g))
			if err != nil {
				return err
			}
			plan := campaign.NewPlan(spec, data, settings)
			if err := campaign.CheckParallel(f.parallel, up.memory, plan.NeedsRouter(), campaign.AvailableMiB()); err != nil {
				return err
			}
			prefix, err := labPrefix(f.labPrefix, out)
			if err != nil {
				return err
			}
			folder, err := campaign.Create(out, data, spec, plan)
			if err != nil {
				return err
			}
			defer folder.Close()
			return runCampaign(ctx, g, folder, campaign.RunnerSettings{Parallel: f.parallel, LabPrefix: prefix, MaxLateness: f.maxLateness}, f.check)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "campaign folder (default HOME/campaigns/NAME-TIMESTAMP)")
	f.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&up.memory, "memory", 128, "RAM per guest in MiB")
	fl.StringVar(&up.accel, "accel", "auto", "accelerator: auto (probe KVM by booting, else TCG), kvm or tcg")
	fl.DurationVar(&up.grace, "grace", 5*time.Second, "guest init's grace between SIGTERM and SIGKILL at shutdown")
	return cmd
}

func newCampaignResumeCmd(g *globals) *cobra.Command {
	f := &campaignFlags{}
	cmd := &cobra.Command{
		Use:   "resume DIR",
		Short: "Continue a campaign cut short: run only the cells not in DIR/results.jsonl",
		Long: `Checks that DIR is a campaign folder whose campaign.json matches its campaign.yaml and
whose results.jsonl holds only its cells, takes down the labs a killed runner left up, and
runs the cells not finished — nothing finished runs again. A torn last line of results.jsonl
(a power loss mid-write) is set aside and its cell runs again. The kernels are those resolved
when the campaign started. --parallel, --lab-prefix and --max-lateness default to the last run's.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDurations(cmd); err != nil {
				return err
			}
			ctx := cmd.Context()
			folder, err := campaign.Open(ctx, args[0], provision.PackageRelease)
			if err != nil {
				return err
			}
			defer folder.Close()
			if folder.Torn != "" {
				fmt.Fprintln(os.Stderr, "campaign: "+folder.Torn)
			}
			s := folder.Runner()
			fl := cmd.Flags()
			if fl.Changed("parallel") || s.Parallel == 0 {
				s.Parallel = f.parallel
			}
			if fl.Changed("lab-prefix") || s.LabPrefix == "" {
				if s.LabPrefix, err = labPrefix(f.labPrefix, folder.Dir); err != nil {
					return err
				}
			}
			if fl.Changed("max-lateness") || s.MaxLateness == 0 {
				s.MaxLateness = f.maxLateness
			}
			if err := campaign.CheckParallel(s.Parallel, folder.Plan.Lab.MemoryMiB, folder.Plan.NeedsRouter(), campaign.AvailableMiB()); err != nil {
				return err
			}
			return runCampaign(ctx, g, folder, s, f.check)
		},
	}
	f.register(cmd)
	return cmd
}

// labPrefix checks a lab prefix, or derives one from the campaign folder:
// camp-HASH-, the same on every resume.
func labPrefix(prefix, dir string) (string, error) {
	if prefix == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256([]byte(abs))
		prefix = "camp-" + hex.EncodeToString(sum[:2]) + "-"
	}
	// The longest name: PREFIXk99r-8.
	if err := lab.ValidateName(prefix + "k99r-8"); err != nil {
		return "", fmt.Errorf("--lab-prefix %q: %w", prefix, err)
	}
	return prefix, nil
}

// runCampaign runs a folder's missing cells and prints the summary.
func runCampaign(ctx context.Context, g *globals, folder *campaign.Folder, s campaign.RunnerSettings, check bool) error {
	if err := folder.SaveRunner(s); err != nil {
		return err
	}
	base := g.labConfig("")
	base.MemoryMiB, base.Accel, base.Grace = folder.Plan.Lab.MemoryMiB, folder.Plan.Lab.Accel, folder.Plan.Lab.Grace
	base.Log = benchLogger(g)
	oc, err := campaign.Run(ctx, folder, &campaign.VMBackend{Base: base}, campaign.RunOptions{
		Parallel: s.Parallel, LabPrefix: s.LabPrefix, MaxLateness: s.MaxLateness,
		Log: g.logger(), Progress: os.Stderr,
	})
	if oc == nil {
		return err
	}
	if werr := printCampaignEnd(folder, oc); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if len(oc.Left) > 0 {
		return fmt.Errorf("%d cell(s) could not be run (failures.jsonl says why); run them with `hostlab campaign resume %s`", len(oc.Left), folder.Dir)
	}
	if check {
		if code := campaign.Summarize(folder.Plan, folder.Finished()).Check; code != 0 {
			return exitError{code}
		}
	}
	return nil
}

// printCampaignEnd prints the summary and this run's figures on stdout,
// and writes the summary to the folder.
func printCampaignEnd(folder *campaign.Folder, oc *campaign.Outcome) error {
	var b bytes.Buffer
	sum := campaign.Summarize(folder.Plan, folder.Finished())
	if err := sum.Write(&b); err != nil {
		return err
	}
	writeRunFigures(&b, oc)
	if len(oc.Left) > 0 {
		ids := make([]string, 0, len(oc.Left))
		for id := range oc.Left {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		fmt.Fprintf(&b, "not finished (%d): ", len(ids))
		for i, id := range ids {
			if i > 0 {
				b.WriteString("; ")
			}
			if i == 5 {
				fmt.Fprintf(&b, "and %d more", len(ids)-5)
				break
			}
			fmt.Fprintf(&b, "%s (%s)", id, oc.Left[id])
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "campaign folder %s (results.jsonl, runs/ID/)\n", folder.Dir)
	os.Stdout.Write(b.Bytes())
	return os.WriteFile(filepath.Join(folder.Dir, campaign.FileSummary), b.Bytes(), 0o644)
}

// writeRunFigures prints what this run cost: wall time, overhead per cell
// and throughput.
func writeRunFigures(w io.Writer, oc *campaign.Outcome) {
	if oc.Ran == 0 {
		return
	}
	fmt.Fprintf(w, "this run: %d cell(s) in %s at %d lab(s)", oc.Ran, oc.Wall.Round(time.Second), oc.Parallel)
	if oc.FinalParallel != oc.Parallel {
		fmt.Fprintf(w, " (lowered to %d)", oc.FinalParallel)
	}
	fmt.Fprintf(w, "; overhead per cell %.1f s ((wall − Σ detection %.1f s) / cells), %.1f s in a lab already up; %.0f cells/h\n",
		oc.OverheadPerCell().Seconds(), oc.DetectS, oc.InLabOverhead().Seconds(), float64(oc.Ran)/oc.Wall.Hours())
	for _, l := range oc.Lowered {
		fmt.Fprintf(w, "parallelism lowered %s\n", l)
	}
}

func newCampaignPlanCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Check a campaign file and list its cells, with ids and an estimate of the time at each parallelism (no VM)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := campaign.Load(cmd.Context(), args[0], nil, loadOptions(g))
			if err != nil {
				return err
			}
			plan := campaign.Expand(spec, "", campaign.LabSettings{})
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(plan)
			}
			fmt.Printf("%s: %d cells\n", args[0], len(plan.Cells))
			for _, k := range plan.Kernels {
				fmt.Printf("  kernel %s → %s (release %s)\n", k.Written, orDash(k.Package+k.Image), k.Release)
			}
			for _, c := range plan.Cells {
				fmt.Printf("  %s  %s %s on %s, rep %d\n", c.ID, c.Scenario, c.VariantName, c.KernelRelease, c.Rep)
			}
			for _, p := range []int{1, 2, 4} {
				fmt.Printf("estimated %s at --parallel %d (from the model's predictions and %s per cell besides detection)\n",
					campaign.Estimate(plan, p).Round(time.Minute), p, campaign.PriorOverhead)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan (campaign.json) instead")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newCampaignSummaryCmd() *cobra.Command {
	var asJSON, check bool
	cmd := &cobra.Command{
		Use:   "summary DIR",
		Short: "Print a campaign folder's summary (also while it runs): answers per variant and kernel, and a table",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, done, err := campaign.ReadFolder(args[0])
			if err != nil {
				return err
			}
			sum := campaign.Summarize(plan, done)
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(sum); err != nil {
					return err
				}
			} else if err := sum.Write(os.Stdout); err != nil {
				return err
			}
			if check && sum.Check != 0 {
				return exitError{sum.Check}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	cmd.Flags().BoolVar(&check, "check", false, "exit status from the cells: 3 when one missed the budget or was unexpected, 4 when one was unknown")
	return cmd
}

// quietLogger discards cells' progress (used by the bench unless -v).
func quietLogger(g *globals) *slog.Logger {
	if g.verbose {
		return g.logger()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
