package report

import (
	"fmt"
	"html/template"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report is a campaign made ready to write: its cells, each run's
// timeline data, and what the summary says.
type Report struct {
	Campaign  *Campaign
	Figures   []*Figure
	Generated time.Time
	// Timelines are the runs' timeline data, by run key.
	Timelines map[string]Timeline
}

// Build groups the campaign's runs and reads every run's timeline.
func Build(c *Campaign, now time.Time) *Report {
	rep := &Report{Campaign: c, Figures: Figures(c), Generated: now, Timelines: map[string]Timeline{}}
	for _, r := range c.Runs {
		rep.Timelines[r.Key()] = runTimeline(r)
	}
	return rep
}

// Totals counts every run of the campaign.
func (rep *Report) Totals() Counts {
	var c Counts
	for _, r := range rep.Campaign.Runs {
		c.Add(r.Status)
	}
	return c
}

// Attention lists the runs that need a look: unexpected first, then
// unknown, then incomplete, each in campaign order.
func (rep *Report) Attention() []*Run {
	var out []*Run
	for _, s := range []Status{StatusUnexpected, StatusUnknown, StatusIncomplete} {
		for _, f := range rep.Figures {
			for _, g := range f.Groups {
				for _, r := range g.Runs {
					if r.Status == s {
						out = append(out, r)
					}
				}
			}
		}
	}
	return out
}

// Kernels are the distinct kernels of the campaign, in order.
func (rep *Report) Kernels() []string {
	var out []string
	for _, r := range rep.Campaign.Runs {
		k := r.Kernel
		if r.KernelRelease != "" && r.KernelRelease != k {
			k += " (" + r.KernelRelease + ")"
		}
		if k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// Budget sums the budget calls: runs that met it, missed it, and could
// not tell; budget is the largest budget (nil: the campaign has none).
func (rep *Report) Budget() (budget *float64, met, missed, unknown int) {
	for _, f := range rep.Figures {
		for _, g := range f.Groups {
			met, missed, unknown = met+g.Met, missed+g.Missed, unknown+g.NoBudgetCall
			if g.Budget != nil && (budget == nil || *g.Budget > *budget) {
				budget = g.Budget
			}
		}
	}
	return budget, met, missed, unknown
}

// Headline is the page's first sentence: the answer.
func (rep *Report) Headline() string {
	t := rep.Totals()
	n := t.Total()
	runs := plural(n, "run")
	if t.Expected == n {
		return fmt.Sprintf("All %s behaved as the kernel's rules predict.", runs)
	}
	var parts []string
	for _, s := range []Status{StatusUnexpected, StatusUnknown, StatusIncomplete} {
		if k := t.Of(s); k > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", k, s))
		}
	}
	return fmt.Sprintf("%d of %s as expected; %s.", t.Expected, runs, strings.Join(parts, ", "))
}

// BudgetLine says how the campaign did against its budget ("" if none).
func (rep *Report) BudgetLine() string {
	b, met, missed, unknown := rep.Budget()
	if b == nil {
		return ""
	}
	s := fmt.Sprintf("Budget %s: met by %s, missed by %d", secs(*b), plural(met, "run"), missed)
	if unknown > 0 {
		s += fmt.Sprintf(", %d without a detection time", unknown)
	}
	return s + "."
}

// Pending says how many runs campaign.json plans that have no line yet
// ("" when none, or when the plan is unknown).
func (rep *Report) Pending() string {
	lines := 0
	for _, r := range rep.Campaign.Runs {
		if r.Line > 0 {
			lines++
		}
	}
	if n := rep.Campaign.Planned - lines; rep.Campaign.Planned > 0 && n > 0 {
		return fmt.Sprintf("%s of the %d planned have no result yet (still running, or cut off).", plural(n, "run"), rep.Campaign.Planned)
	}
	return ""
}

// folderLink is the href of a run folder: relative to the campaign folder
// (where report.html is) when inside it, else a file URL.
func (rep *Report) folderLink(dir string) template.URL {
	if dir == "" {
		return ""
	}
	if rel, err := filepath.Rel(rep.Campaign.Dir, dir); err == nil && !strings.HasPrefix(rel, "..") {
		return template.URL(pathEscape(filepath.ToSlash(rel)) + "/")
	}
	return template.URL("file://" + pathEscape(filepath.ToSlash(dir)) + "/") // A folder hostlab wrote, escaped.
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// pathEscape escapes each segment of a slash-separated path for a URL.
func pathEscape(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
