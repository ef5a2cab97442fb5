package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab/campaign"
	"github.com/hostlab/hostlab/lab/model"
)

// Campaign files of the campaign bench.
const (
	benchOverheadYAML = `# hostlab campaign bench: the campaign's own cost per cell, one lab reused
scenarios: [kill-server, crash-reboot]
repetitions: %d
`
	benchThroughputYAML = `# hostlab campaign bench: throughput and timer lateness at each parallelism
scenarios: [power-off]
variants:
  - {sysctl: ["client:net.ipv4.tcp_retries2=5"]}
repetitions: %d
`
)

// overheadRow is one scenario's cost in the overhead campaign.
type overheadRow struct {
	Scenario  string  `json:"scenario"`
	Cells     int     `json:"cells"`
	TookS     float64 `json:"took_mean_s"`
	DetectS   float64 `json:"detect_mean_s"`
	OverheadS float64 `json:"overhead_mean_s"`
}

// throughputRow is the throughput campaign at one parallelism.
type throughputRow struct {
	Parallel    int     `json:"parallel"`
	Cells       int     `json:"cells"`
	WallS       float64 `json:"wall_s"`
	LabUpS      float64 `json:"lab_up_max_s"`
	CellsPerH   float64 `json:"cells_per_hour"`
	Expected    int     `json:"expected"`
	Unexpected  int     `json:"unexpected"`
	Unknown     int     `json:"unknown"`
	DetectMed   float64 `json:"detect_median_s"`
	DetectMax   float64 `json:"detect_max_s"`
	LateMax     float64 `json:"lateness_max_s"`
	LateMed     float64 `json:"lateness_median_s"`
	StarveMax   float64 `json:"starvation_max_s"`
	OverLimit   int     `json:"cells_over_max_lateness"`
	TookMedianS float64 `json:"took_median_s"`
}

// campaignBench is the bench's outcome (bench.json).
type campaignBench struct {
	Machine          string  `json:"machine"`
	Out              string  `json:"out"`
	OverheadWallS    float64 `json:"overhead_wall_s"`
	OverheadLabUpS   float64 `json:"overhead_lab_up_s"`
	OverheadPerCellS float64 `json:"overhead_per_cell_s"`
	ReusedPerCellS   float64 `json:"overhead_per_cell_reused_lab_s"`
	// RunnerPerCellS is the campaign runner's own share: wall time minus
	// the cells' own wall times and the bring-up, per cell.
	RunnerPerCellS float64         `json:"runner_overhead_per_cell_s"`
	Overhead       []overheadRow   `json:"overhead"`
	Throughput     []throughputRow `json:"throughput"`
}

func newCampaignBenchCmd(g *globals) *cobra.Command {
	var reps, treps int
	var levels []int
	var out, prefix string
	var skipOverhead bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure campaigns: overhead per cell (kill-server, crash-reboot, one reused lab) and throughput and timer lateness at --levels",
		Long: `Runs real campaigns on labs of its own (PREFIXo-…, PREFIXpN-…), each in a folder under --out:
an overhead campaign (kill-server and crash-reboot, --reps each, one lab) giving the overhead
per cell — wall time minus the sum of the cells' detections, divided by the number of cells —
and a throughput campaign of power-off cells with tcp_retries2=5 (--throughput-reps cells) at
each parallelism of --levels, with the parallelism never lowered so that the timer lateness
shows what each level does to the guests.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reps < 1 || treps < 1 {
				return fmt.Errorf("--reps and --throughput-reps must be at least 1")
			}
			for _, p := range levels {
				if err := campaign.CheckParallel(p, 128, false, campaign.AvailableMiB()); err != nil {
					return fmt.Errorf("--levels: %w", err)
				}
			}
			if out == "" {
				out = filepath.Join(homeOf(g), "bench", "campaign-"+time.Now().UTC().Format("20060102T150405Z"))
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			b := campaignBench{Out: out, Machine: fmt.Sprintf("%d host CPUs", runtime.NumCPU())}
			ctx := cmd.Context()
			if !skipOverhead {
				oc, recs, err := benchCampaign(ctx, g, out, "overhead", fmt.Sprintf(benchOverheadYAML, reps), 1, prefix+"o-")
				if err != nil {
					return err
				}
				b.OverheadWallS, b.OverheadPerCellS = oc.Wall.Seconds(), oc.OverheadPerCell().Seconds()
				for _, u := range oc.LabUps {
					b.OverheadLabUpS += u
				}
				if oc.Ran > 0 {
					b.ReusedPerCellS = (oc.Wall.Seconds() - b.OverheadLabUpS - oc.DetectS) / float64(oc.Ran)
					b.RunnerPerCellS = (oc.Wall.Seconds() - b.OverheadLabUpS - oc.TookS) / float64(oc.Ran)
				}
				b.Overhead = overheadRows(recs)
			}
			for _, p := range levels {
				oc, recs, err := benchCampaign(ctx, g, out, "p"+strconv.Itoa(p), fmt.Sprintf(benchThroughputYAML, treps), p, prefix+"p"+strconv.Itoa(p)+"-")
				if err != nil {
					return err
				}
				b.Throughput = append(b.Throughput, throughputOf(p, oc, recs))
			}
			if len(b.Throughput) > 0 || len(b.Overhead) > 0 {
				js, _ := json.MarshalIndent(b, "", "  ")
				if err := os.WriteFile(filepath.Join(out, "bench.json"), append(js, '\n'), 0o644); err != nil {
					return err
				}
			}
			return printCampaignBench(b)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&reps, "reps", 3, "repetitions of kill-server and crash-reboot in the overhead campaign")
	fl.IntVar(&treps, "throughput-reps", 8, "power-off cells in each throughput campaign")
	fl.IntSliceVar(&levels, "levels", []int{1, 2, 4}, "parallelisms of the throughput campaigns")
	fl.StringVar(&out, "out", "", "folder of the bench's campaign folders and bench.json (default HOME/bench/campaign-TIMESTAMP)")
	fl.StringVar(&prefix, "lab-prefix", "cbench-", "name prefix of the bench's labs")
	fl.BoolVar(&skipOverhead, "skip-overhead", false, "run only the throughput campaigns")
	return cmd
}

// benchCampaign runs one campaign of the bench from its file's text.
func benchCampaign(ctx context.Context, g *globals, out, name, yaml string, parallel int, prefix string) (*campaign.Outcome, []campaign.Record, error) {
	file := filepath.Join(out, name+".yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "campaign bench: %s at --parallel %d\n", name, parallel)
	folder, err := campaign.Start(ctx, file, filepath.Join(out, name), campaign.LabSettings{MemoryMiB: 128, Accel: "auto", Grace: 5 * time.Second}, loadOptions(g))
	if err != nil {
		return nil, nil, err
	}
	defer folder.Close()
	base := g.labConfig("")
	base.MemoryMiB, base.Accel, base.Grace = 128, "auto", 5*time.Second
	base.Log = benchLogger(g)
	oc, err := campaign.Run(ctx, folder, &campaign.VMBackend{Base: base}, campaign.RunOptions{
		Parallel: parallel, LabPrefix: prefix, MaxLateness: -1, Log: quietLogger(g), Progress: os.Stderr,
	})
	if err != nil {
		return oc, nil, err
	}
	var recs []campaign.Record
	for _, r := range folder.Finished() {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b campaign.Record) int { return a.Started.Compare(b.Started) })
	return oc, recs, nil
}

func overheadRows(recs []campaign.Record) []overheadRow {
	var rows []overheadRow
	for _, s := range []string{"kill-server", "crash-reboot"} {
		row := overheadRow{Scenario: s}
		for _, r := range recs {
			if r.Scenario != s {
				continue
			}
			row.Cells++
			row.TookS += r.TookS
			if d := r.Observed.DetectS; d != nil {
				row.DetectS += *d
			}
		}
		if row.Cells > 0 {
			row.TookS /= float64(row.Cells)
			row.DetectS /= float64(row.Cells)
			row.OverheadS = row.TookS - row.DetectS
		}
		rows = append(rows, row)
	}
	return rows
}

func throughputOf(p int, oc *campaign.Outcome, recs []campaign.Record) throughputRow {
	row := throughputRow{Parallel: p, Cells: oc.Ran, WallS: oc.Wall.Seconds()}
	if oc.Wall > 0 {
		row.CellsPerH = float64(oc.Ran) / oc.Wall.Hours()
	}
	for _, u := range oc.LabUps {
		row.LabUpS = max(row.LabUpS, u)
	}
	var det, late, took []float64
	for _, r := range recs {
		switch r.Verdict {
		case model.Expected:
			row.Expected++
		case model.Unexpected:
			row.Unexpected++
		default:
			row.Unknown++
		}
		if d := r.Observed.DetectS; d != nil {
			det = append(det, *d)
		}
		if l := r.Lateness; l != nil && l.Timers > 0 {
			late = append(late, l.MaxS)
		}
		if st := r.StarvationS; st != nil {
			row.StarveMax = max(row.StarveMax, *st)
			if *st > campaign.DefaultMaxLateness.Seconds() {
				row.OverLimit++
			}
		}
		took = append(took, r.TookS)
	}
	row.DetectMed, row.DetectMax = medianOf(det), maxOf(det)
	row.LateMed, row.LateMax = medianOf(late), maxOf(late)
	row.TookMedianS = medianOf(took)
	return row
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}

func printCampaignBench(b campaignBench) error {
	fmt.Printf("campaign bench (%s); folders under %s\n", b.Machine, b.Out)
	if len(b.Overhead) > 0 {
		n := 0
		for _, r := range b.Overhead {
			n += r.Cells
		}
		fmt.Printf("overhead, one lab at a time: %d cells in %.1f s (lab bring-up %.1f s): %.1f s per cell ((wall − Σ detection) / cells); %.1f s per cell in the reused lab (bring-up left out), of which %.2f s between cells (the runner's own)\n",
			n, b.OverheadWallS, b.OverheadLabUpS, b.OverheadPerCellS, b.ReusedPerCellS, b.RunnerPerCellS)
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SCENARIO\tCELLS\tTOOK s mean\tDETECT s mean\tOVERHEAD s mean")
		for _, r := range b.Overhead {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.3f\t%.1f\n", r.Scenario, r.Cells, r.TookS, r.DetectS, r.OverheadS)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(b.Throughput) > 0 {
		fmt.Println("throughput, power-off with tcp_retries2=5 (parallelism never lowered):")
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARALLEL\tCELLS\tWALL s\tCELLS/h\tEXPECTED\tUNEXPECTED\tUNKNOWN\tDETECT s median/max\tLATENESS s median/max\tSTARVATION s max\tOVER 0.2 s\tCELL s median")
		for _, r := range b.Throughput {
			fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%d\t%d\t%d\t%.3f / %.3f\t%.3f / %.3f\t%.3f\t%d\t%.0f\n", r.Parallel, r.Cells, r.WallS, r.CellsPerH,
				r.Expected, r.Unexpected, r.Unknown, r.DetectMed, r.DetectMax, r.LateMed, r.LateMax, r.StarveMax, r.OverLimit, r.TookMedianS)
		}
		return tw.Flush()
	}
	return nil
}
