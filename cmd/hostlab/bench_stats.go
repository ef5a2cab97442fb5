package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/scenario"
)

// verdictRow sums up the runs of one variant of the verdicts bench.
type verdictRow struct {
	// Variant is the scenario and the variant's own flags.
	Variant string `json:"variant"`
	// Runs counts every run, failed ones included.
	Runs       int `json:"runs"`
	Expected   int `json:"expected"`
	Unexpected int `json:"unexpected"`
	Unknown    int `json:"unknown"`
	// Failed counts runs that did not complete (their verdict is not
	// counted).
	Failed int `json:"failed"`
	// Observed counts the completed runs by observed.error ("none" when
	// the client reported nothing).
	Observed map[string]int `json:"observed,omitempty"`
	// DetectS spreads observed.detect_s over the completed runs that have
	// one.
	DetectS *spread `json:"detect_s,omitempty"`
	// PredictedS spreads predicted_s over the completed runs that have one.
	PredictedS *spread `json:"predicted_s,omitempty"`
	// Lateness sums up the timer lateness of the completed runs that
	// measured one.
	Lateness *latenessSum `json:"lateness,omitempty"`
}

// spread is the minimum, median and maximum of n values.
type spread struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// latenessSum is timer lateness across runs: the largest single lateness,
// and the mean over every timer measured (each run's mean weighted by its
// number of timers).
type latenessSum struct {
	Runs   int     `json:"runs"`
	Timers int     `json:"timers"`
	MaxS   float64 `json:"max_s"`
	MeanS  float64 `json:"mean_s"`
}

// summarizeVerdicts sums up the results of one variant's runs. A result
// that is not complete counts as a failed run and nothing else; the other
// figures come from the completed runs only.
func summarizeVerdicts(variant string, rs []scenario.Result) verdictRow {
	row := verdictRow{Variant: variant, Runs: len(rs)}
	var detect, predicted []float64
	var late latenessSum
	var lateSum, meanSum float64
	for _, r := range rs {
		if !r.Complete {
			row.Failed++
			continue
		}
		switch r.Verdict {
		case model.Expected:
			row.Expected++
		case model.Unexpected:
			row.Unexpected++
		default:
			row.Unknown++
		}
		if row.Observed == nil {
			row.Observed = map[string]int{}
		}
		row.Observed[cmp.Or(r.Observed.Error, "none")]++
		if r.Observed.DetectS != nil {
			detect = append(detect, *r.Observed.DetectS)
		}
		if r.PredictedS != nil {
			predicted = append(predicted, *r.PredictedS)
		}
		if l := r.Lateness; l != nil {
			late.Runs++
			late.Timers += l.Timers
			late.MaxS = max(late.MaxS, l.MaxS)
			lateSum += l.MeanS * float64(l.Timers)
			meanSum += l.MeanS
		}
	}
	row.DetectS, row.PredictedS = spreadOf(detect), spreadOf(predicted)
	if late.Runs > 0 {
		late.MeanS = meanSum / float64(late.Runs)
		if late.Timers > 0 {
			late.MeanS = lateSum / float64(late.Timers)
		}
		row.Lateness = &late
	}
	return row
}

// spreadOf is the spread of xs, nil when there are none.
func spreadOf(xs []float64) *spread {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return &spread{N: n, Min: s[0], Median: med, Max: s[n-1]}
}

// writeVerdictTable prints the rows as an aligned table.
func writeVerdictTable(w io.Writer, rows []verdictRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIANT\tRUNS\tEXPECTED\tUNEXPECTED\tUNKNOWN\tFAILED\tOBSERVED\tDETECT s min/median/max\tPREDICTED s\tLATENESS s max/mean")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", r.Variant, r.Runs, r.Expected, r.Unexpected, r.Unknown, r.Failed,
			observedCell(r.Observed), detectCell(r.DetectS), predictedCell(r.PredictedS), latenessCell(r.Lateness))
	}
	return tw.Flush()
}

// observedCell lists the observed errors, most frequent first, with their
// counts when there are several runs.
func observedCell(obs map[string]int) string {
	if len(obs) == 0 {
		return "-"
	}
	names := slices.SortedFunc(maps.Keys(obs), func(a, b string) int {
		return cmp.Or(cmp.Compare(obs[b], obs[a]), cmp.Compare(a, b))
	})
	total := 0
	for _, n := range obs {
		total += n
	}
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = name
		if total > 1 {
			parts[i] = fmt.Sprintf("%s×%d", name, obs[name])
		}
	}
	return strings.Join(parts, " ")
}

func detectCell(s *spread) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f / %.3f / %.3f", s.Min, s.Median, s.Max)
}

// predictedCell is the prediction, or its range when it varies between
// runs (it depends on what each run measured, e.g. the RTT).
func predictedCell(s *spread) string {
	switch {
	case s == nil:
		return "-"
	case fmt.Sprintf("%.3f", s.Min) == fmt.Sprintf("%.3f", s.Max):
		return fmt.Sprintf("%.3f", s.Min)
	}
	return fmt.Sprintf("%.3f–%.3f", s.Min, s.Max)
}

func latenessCell(l *latenessSum) string {
	if l == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f / %.3f", l.MaxS, l.MeanS)
}
