package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab/report"
)

func newReportCmd() *cobra.Command {
	var opt report.Options
	cmd := &cobra.Command{
		Use:   "report DIR",
		Short: "Write a campaign folder's report: DIR/report.html (and report.csv, report.json)",
		Long: `Reads a campaign folder — DIR/results.jsonl, DIR/campaign.json when there is one, and
every run folder under DIR — and writes DIR/report.html: a self-contained page (no
network, no script) that opens with the answer (verdicts per variant and kernel, worst
detection, budget met or missed), lists the unexpected, unknown and incomplete runs with
why, then plots each cell's detection times against the prediction and each run's
timeline. A folder without results.jsonl is read as a folder of plain runs (e.g. what
` + "`hostlab bench verdicts`" + ` leaves). Nothing is judged again: the page shows what each run recorded.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			files, rep, err := report.Write(args[0], opt)
			if err != nil {
				return err
			}
			for _, n := range rep.Campaign.Notes {
				fmt.Printf("note: %s\n", n)
			}
			fmt.Println(rep.Headline())
			for _, line := range []string{rep.BudgetLine(), rep.Pending()} {
				if line != "" {
					fmt.Println(line)
				}
			}
			for _, f := range files {
				fmt.Printf("wrote %s\n", f)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opt.CSV, "csv", false, "also write DIR/report.csv (a line per run)")
	cmd.Flags().BoolVar(&opt.JSON, "json", false, "also write DIR/report.json (the summary, every run, and the data behind every plot)")
	return cmd
}
