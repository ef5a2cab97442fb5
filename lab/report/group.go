package report

import (
	"slices"
	"sort"
)

// Counts are a set of runs counted by status.
type Counts struct {
	Expected   int `json:"expected"`
	Unexpected int `json:"unexpected"`
	Unknown    int `json:"unknown"`
	Incomplete int `json:"incomplete"`
}

// Add counts one run of status s.
func (c *Counts) Add(s Status) {
	switch s {
	case StatusExpected:
		c.Expected++
	case StatusUnexpected:
		c.Unexpected++
	case StatusUnknown:
		c.Unknown++
	default:
		c.Incomplete++
	}
}

// Of returns the count of status s.
func (c Counts) Of(s Status) int {
	switch s {
	case StatusExpected:
		return c.Expected
	case StatusUnexpected:
		return c.Unexpected
	case StatusUnknown:
		return c.Unknown
	}
	return c.Incomplete
}

// Total is the number of runs counted.
func (c Counts) Total() int { return c.Expected + c.Unexpected + c.Unknown + c.Incomplete }

// Worst is the status that decides how the counts look: unexpected beats
// unknown beats incomplete beats expected (Jepsen's order, incomplete being
// an unknown the run could not even record).
func (c Counts) Worst() Status {
	switch {
	case c.Unexpected > 0:
		return StatusUnexpected
	case c.Unknown > 0:
		return StatusUnknown
	case c.Incomplete > 0:
		return StatusIncomplete
	}
	return StatusExpected
}

// Group is one cell of the campaign: the runs of a scenario × kernel ×
// variant.
type Group struct {
	Scenario string
	// Kernel is as the campaign wrote it; Release as it resolved.
	Kernel  string
	Release string
	Variant string
	Runs    []*Run
	Counts  Counts
	// Budget is the cell's detection budget in seconds (nil: none).
	Budget *float64
	// Met, Missed and NoBudgetCall count the runs that met the budget,
	// missed it, and could not tell (no detection time).
	Met, Missed, NoBudgetCall int
}

// Figure is a scenario × variant: its cells side by side, one per kernel.
type Figure struct {
	Scenario string
	Variant  string
	Groups   []*Group
	anchor   string
}

// Anchor is the figure's HTML id.
func (f *Figure) Anchor() string { return f.anchor }

// Title names the figure as on the command line.
func (f *Figure) Title() string { return cellName(f.Scenario, f.Variant) }

// cellName is "scenario variant" or the scenario alone for its defaults.
func cellName(scen, variant string) string {
	if variant == "" {
		return scen
	}
	return scen + " " + variant
}

// Figures groups the campaign's runs into cells and the cells into figures,
// in the order the campaign first lists them.
func Figures(c *Campaign) []*Figure {
	var figs []*Figure
	anchors := map[string]bool{}
	byFig := map[[2]string]*Figure{}
	byGroup := map[[3]string]*Group{}
	for _, r := range c.Runs {
		fk := [2]string{r.Scenario, r.VariantName}
		f, ok := byFig[fk]
		if !ok {
			f = &Figure{Scenario: r.Scenario, Variant: r.VariantName, anchor: unique(anchors, "cell-"+slug(r.Scenario+" "+r.VariantName), "-")}
			byFig[fk] = f
			figs = append(figs, f)
		}
		gk := [3]string{r.Scenario, r.Kernel, r.VariantName}
		g, ok := byGroup[gk]
		if !ok {
			g = &Group{Scenario: r.Scenario, Kernel: r.Kernel, Variant: r.VariantName}
			byGroup[gk] = g
			f.Groups = append(f.Groups, g)
		}
		g.add(r)
	}
	for _, f := range figs {
		for _, g := range f.Groups {
			sort.SliceStable(g.Runs, func(i, j int) bool { return g.Runs[i].Rep < g.Runs[j].Rep })
		}
	}
	return figs
}

// add counts r into the group.
func (g *Group) add(r *Run) {
	g.Runs = append(g.Runs, r)
	g.Counts.Add(r.Status)
	if g.Release == "" {
		g.Release = r.KernelRelease
	}
	if r.BudgetS != nil && (g.Budget == nil || *r.BudgetS > *g.Budget) {
		b := *r.BudgetS
		g.Budget = &b
	}
	if r.BudgetS == nil {
		return
	}
	switch {
	case r.MeetsBudget != nil && *r.MeetsBudget:
		g.Met++
	case r.MeetsBudget != nil:
		g.Missed++
	default:
		g.NoBudgetCall++
	}
}

// Detects are the group's detection times in seconds, sorted, from the
// runs that recorded one (incomplete runs included: what they saw is real).
func (g *Group) Detects() []float64 {
	var out []float64
	for _, r := range g.Runs {
		if r.HasResult && r.Observed.DetectS != nil {
			out = append(out, *r.Observed.DetectS)
		}
	}
	slices.Sort(out)
	return out
}

// Worst is the run that took longest to detect (nil: none detected).
func (g *Group) Worst() *Run {
	var w *Run
	for _, r := range g.Runs {
		if r.HasResult && r.Observed.DetectS != nil && (w == nil || *r.Observed.DetectS > *w.Observed.DetectS) {
			w = r
		}
	}
	return w
}

// Predicted is the range of the runs' nominal predictions (nil: none).
func (g *Group) Predicted() *Range {
	var rg *Range
	for _, r := range g.Runs {
		if r.HasResult && r.PredictedS != nil {
			rg = rg.with(*r.PredictedS, *r.PredictedS)
		}
	}
	return rg
}

// Window is the envelope of the runs' detection windows (nil: none).
func (g *Group) Window() *Range {
	var rg *Range
	for _, r := range g.Runs {
		if w := r.Expected.Window; r.HasResult && w != nil {
			rg = rg.with(w.EarliestS, w.LatestS)
		}
	}
	return rg
}

// Errors are the distinct errors the client observed, in order of first
// appearance.
func (g *Group) Errors() []string {
	var out []string
	for _, r := range g.Runs {
		if e := r.Observed.Error; r.HasResult && e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// Range is an interval of seconds.
type Range struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// with widens the range to [lo, hi]; a nil range becomes [lo, hi].
func (rg *Range) with(lo, hi float64) *Range {
	if rg == nil {
		return &Range{lo, hi}
	}
	return &Range{min(rg.Lo, lo), max(rg.Hi, hi)}
}

// median of sorted values.
func median(xs []float64) float64 {
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
