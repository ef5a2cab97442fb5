package campaign

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hostlab/hostlab/lab/model"
)

// Exit statuses of --check, as hostlab run --check.
const (
	ExitMissOrUnexpected = 3
	ExitUnknown          = 4
)

// Row summarises the cells of one scenario, variant and kernel.
type Row struct {
	Scenario      string `json:"scenario"`
	VariantName   string `json:"variant_name"`
	Kernel        string `json:"kernel"`
	KernelRelease string `json:"kernel_release"`
	// Cells is the number of cells planned, Finished of them finished.
	Cells    int `json:"cells"`
	Finished int `json:"finished"`
	// Verdict counts of the finished cells.
	Expected   int `json:"expected"`
	Unexpected int `json:"unexpected"`
	Unknown    int `json:"unknown"`
	// Errors are the distinct errors the client observed.
	Errors []string `json:"errors"`
	// Detection (observed.detect_s) of the cells that detected.
	DetectMin    *float64 `json:"detect_min_s"`
	DetectMedian *float64 `json:"detect_median_s"`
	DetectMax    *float64 `json:"detect_max_s"`
	// PredictedMin and PredictedMax bound the predictions.
	PredictedMin *float64 `json:"predicted_min_s"`
	PredictedMax *float64 `json:"predicted_max_s"`
	// LatenessMax is the largest timer lateness measured.
	LatenessMax *float64 `json:"lateness_max_s"`
	// Meets and Misses count the budget's outcomes; Nothing the cells whose
	// client learnt nothing (they miss it).
	Meets   int `json:"meets"`
	Misses  int `json:"misses"`
	Nothing int `json:"nothing"`
}

// Answer is the campaign's answer for one scenario and variant over every
// kernel.
type Answer struct {
	Scenario    string `json:"scenario"`
	VariantName string `json:"variant_name"`
	// Meets is whether every finished cell met the budget (null without a
	// budget or before any cell finished).
	Meets *bool `json:"meets"`
	// WorstS is the worst detection of its finished cells.
	WorstS *float64 `json:"worst_s"`
	// Text is the answer as a sentence.
	Text string `json:"text"`
}

// Summary is a campaign's outcome so far.
type Summary struct {
	Cells    int      `json:"cells"`
	Finished int      `json:"finished"`
	BudgetS  *float64 `json:"budget_s"`
	Rows     []Row    `json:"rows"`
	Answers  []Answer `json:"answers"`
	// Check is --check's exit status: 0, 3 when a finished cell missed the
	// budget or was unexpected, 4 when one was unknown (and none missed or
	// was unexpected).
	Check int `json:"check"`
}

// Summarize sums up the finished cells of a campaign.
func Summarize(plan *Plan, done map[string]Record) *Summary {
	s := &Summary{Cells: len(plan.Cells), BudgetS: plan.BudgetS}
	type key struct{ scen, variant, kernel string }
	rows := map[key]*Row{}
	recs := map[key][]Record{}
	var order []key
	for _, c := range plan.Cells {
		k := key{c.Scenario, c.VariantName, c.Kernel}
		row, ok := rows[k]
		if !ok {
			row = &Row{Scenario: c.Scenario, VariantName: c.VariantName, Kernel: c.Kernel, KernelRelease: c.KernelRelease, Errors: []string{}}
			rows[k] = row
			order = append(order, k)
		}
		row.Cells++
		if r, ok := done[c.ID]; ok {
			recs[k] = append(recs[k], r)
		}
	}
	// Rows by scenario, variant, then kernel, each in file order.
	first := func(of func(Cell) string) map[string]int {
		m := map[string]int{}
		for i, c := range plan.Cells {
			if _, ok := m[of(c)]; !ok {
				m[of(c)] = i
			}
		}
		return m
	}
	si := first(func(c Cell) string { return c.Scenario })
	vi := first(func(c Cell) string { return c.VariantName })
	ki := first(func(c Cell) string { return c.Kernel })
	slices.SortStableFunc(order, func(a, b key) int {
		if d := si[a.scen] - si[b.scen]; d != 0 {
			return d
		}
		if d := vi[a.variant] - vi[b.variant]; d != 0 {
			return d
		}
		return ki[a.kernel] - ki[b.kernel]
	})
	missOrUnexpected, unknown := false, false
	for _, k := range order {
		row := rows[k]
		var det, pred, late []float64
		for _, r := range recs[k] {
			row.Finished++
			s.Finished++
			if r.KernelRelease != "" {
				row.KernelRelease = r.KernelRelease
			}
			switch r.Verdict {
			case model.Expected:
				row.Expected++
			case model.Unexpected:
				row.Unexpected++
				missOrUnexpected = true
			default:
				row.Unknown++
				unknown = true
			}
			if e := r.Observed.Error; e != "" && !slices.Contains(row.Errors, e) {
				row.Errors = append(row.Errors, e)
			}
			if r.Observed.Error == "" {
				row.Nothing++
			}
			if d := r.Observed.DetectS; d != nil && r.Observed.Error != "" {
				det = append(det, *d)
			}
			if p := r.PredictedS; p != nil {
				pred = append(pred, *p)
			}
			if l := r.Lateness; l != nil && l.Timers > 0 {
				late = append(late, l.MaxS)
			}
			if m := r.MeetsBudget; m != nil {
				if *m {
					row.Meets++
				} else {
					row.Misses++
					missOrUnexpected = true
				}
			}
		}
		if len(det) > 0 {
			row.DetectMin, row.DetectMedian, row.DetectMax = ptr(slices.Min(det)), ptr(median(det)), ptr(slices.Max(det))
		}
		if len(pred) > 0 {
			row.PredictedMin, row.PredictedMax = ptr(slices.Min(pred)), ptr(slices.Max(pred))
		}
		if len(late) > 0 {
			row.LatenessMax = ptr(slices.Max(late))
		}
		s.Rows = append(s.Rows, *row)
	}
	switch {
	case missOrUnexpected:
		s.Check = ExitMissOrUnexpected
	case unknown:
		s.Check = ExitUnknown
	}
	s.answers()
	return s
}

func ptr(f float64) *float64 { return &f }

// answers answers the user's question per scenario and variant over the
// kernels, e.g. "power-off --idle --keepalive 4s,2s,3 detects within 20 s
// on 6.1.0-57-amd64 and 6.12.118+deb12-amd64: yes, worst 10.4 s".
func (s *Summary) answers() {
	type key struct{ scen, variant string }
	var order []key
	groups := map[key][]Row{}
	for _, r := range s.Rows {
		k := key{r.Scenario, r.VariantName}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range order {
		rows := groups[k]
		var kernels []string
		cells, finished, misses, nothing, unexp, unknown := 0, 0, 0, 0, 0, 0
		var worst *float64
		worstOn := ""
		for _, r := range rows {
			kernels = append(kernels, r.KernelRelease)
			cells += r.Cells
			finished += r.Finished
			misses += r.Misses
			nothing += r.Nothing
			unexp += r.Unexpected
			unknown += r.Unknown
			if r.DetectMax != nil && (worst == nil || *r.DetectMax > *worst) {
				worst, worstOn = r.DetectMax, r.KernelRelease
			}
		}
		name := k.scen
		if k.variant != "defaults" {
			name += " " + k.variant
		} else {
			name += " (defaults)"
		}
		on := "on " + joinAnd(kernels)
		a := Answer{Scenario: k.scen, VariantName: k.variant, WorstS: worst}
		var b strings.Builder
		switch {
		case s.BudgetS == nil:
			fmt.Fprintf(&b, "%s %s: ", name, on)
			if worst != nil {
				fmt.Fprintf(&b, "worst detection %s", fmtS(*worst))
				if len(kernels) > 1 {
					fmt.Fprintf(&b, " (on %s)", worstOn)
				}
			} else {
				b.WriteString("no detection yet")
			}
		case finished == 0:
			fmt.Fprintf(&b, "%s detects within %s %s: not known yet", name, fmtS(*s.BudgetS), on)
		default:
			meets := misses == 0
			a.Meets = &meets
			fmt.Fprintf(&b, "%s detects within %s %s: ", name, fmtS(*s.BudgetS), on)
			if meets {
				b.WriteString("yes")
				if worst != nil {
					fmt.Fprintf(&b, ", worst %s", fmtS(*worst))
				}
			} else {
				fmt.Fprintf(&b, "no, %d of %d cells missed", misses, finished)
				if worst != nil {
					fmt.Fprintf(&b, " (worst %s on %s", fmtS(*worst), worstOn)
					if nothing > 0 {
						fmt.Fprintf(&b, "; %d learnt nothing", nothing)
					}
					b.WriteString(")")
				} else if nothing > 0 {
					fmt.Fprintf(&b, " (the client learnt nothing in %d)", nothing)
				}
			}
		}
		var notes []string
		if finished < cells {
			notes = append(notes, fmt.Sprintf("%d of %d cells finished", finished, cells))
		}
		if s.BudgetS == nil && nothing > 0 {
			notes = append(notes, fmt.Sprintf("%d learnt nothing", nothing))
		}
		if unexp > 0 {
			notes = append(notes, fmt.Sprintf("%d unexpected", unexp))
		}
		if unknown > 0 {
			notes = append(notes, fmt.Sprintf("%d unknown", unknown))
		}
		if len(notes) > 0 {
			fmt.Fprintf(&b, " [%s]", strings.Join(notes, ", "))
		}
		a.Text = b.String()
		s.Answers = append(s.Answers, a)
	}
}

// joinAnd joins distinct names as "a, b and c".
func joinAnd(names []string) string {
	var u []string
	for _, n := range names {
		if !slices.Contains(u, n) {
			u = append(u, n)
		}
	}
	switch len(u) {
	case 0:
		return "-"
	case 1:
		return u[0]
	}
	return strings.Join(u[:len(u)-1], ", ") + " and " + u[len(u)-1]
}

// Write prints the summary: one answer per scenario and variant, then a
// table per scenario, variant and kernel.
func (s *Summary) Write(w io.Writer) error {
	fmt.Fprintf(w, "%d of %d cells finished", s.Finished, s.Cells)
	if s.BudgetS != nil {
		fmt.Fprintf(w, "; budget %s", fmtS(*s.BudgetS))
	}
	fmt.Fprintln(w)
	for _, a := range s.Answers {
		fmt.Fprintln(w, "  "+a.Text)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tVARIANT\tKERNEL\tCELLS\tEXPECTED\tUNEXPECTED\tUNKNOWN\tOBSERVED\tDETECT s min/median/max\tPREDICTED s\tLATENESS max s\tBUDGET meets/misses")
	for _, r := range s.Rows {
		budget := "-"
		if s.BudgetS != nil {
			budget = fmt.Sprintf("%d/%d", r.Meets, r.Misses)
		}
		cells := fmt.Sprintf("%d", r.Finished)
		if r.Finished < r.Cells {
			cells = fmt.Sprintf("%d of %d", r.Finished, r.Cells)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.VariantName, r.KernelRelease, cells,
			r.Expected, r.Unexpected, r.Unknown, orDash(strings.Join(r.Errors, ",")),
			triple(r.DetectMin, r.DetectMedian, r.DetectMax), span(r.PredictedMin, r.PredictedMax), num(r.LatenessMax), budget)
	}
	return tw.Flush()
}

func num(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *f)
}

func triple(a, b, c *float64) string {
	if a == nil {
		return "-"
	}
	return num(a) + " / " + num(b) + " / " + num(c)
}

func span(a, b *float64) string {
	if a == nil {
		return "-"
	}
	if *a == *b {
		return num(a)
	}
	return num(a) + "–" + num(b)
}
