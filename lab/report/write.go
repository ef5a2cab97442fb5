package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Options choose what Write produces besides report.html.
type Options struct {
	// CSV writes report.csv (a line per run); JSON writes report.json (the
	// summary, every run, and the data behind every plot).
	CSV  bool
	JSON bool
	// Now stamps the page (default time.Now).
	Now func() time.Time
}

// Write loads the campaign folder dir and writes its report files into it,
// returning their paths.
func Write(dir string, opt Options) ([]string, *Report, error) {
	c, err := Load(dir)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	rep := Build(c, now())
	var written []string
	emit := func(name string, fn func(io.Writer) error) error {
		var b bytes.Buffer
		if err := fn(&b); err != nil {
			return err
		}
		p := filepath.Join(c.Dir, name)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		written = append(written, p)
		return nil
	}
	if err := emit(HTMLFile, rep.WriteHTML); err != nil {
		return written, rep, err
	}
	if opt.CSV {
		if err := emit(CSVFile, rep.WriteCSV); err != nil {
			return written, rep, err
		}
	}
	if opt.JSON {
		if err := emit(JSONFile, rep.WriteJSON); err != nil {
			return written, rep, err
		}
	}
	return written, rep, nil
}

// csvHeader are report.csv's columns.
var csvHeader = []string{"id", "scenario", "kernel", "kernel_release", "variant", "rep", "status", "verdict",
	"expected_errors", "observed_error", "detect_s", "detect_uncert_s", "predicted_s", "window_earliest_s", "window_latest_s",
	"budget_s", "meets_budget", "retransmits", "lateness_max_s", "complete", "incomplete", "why", "run_dir"}

// WriteCSV writes a line per run.
func (rep *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("write report csv: %w", err)
	}
	for _, f := range rep.Figures {
		for _, g := range f.Groups {
			for _, r := range g.Runs {
				if err := cw.Write(csvRow(r)); err != nil {
					return fmt.Errorf("write report csv: %w", err)
				}
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write report csv: %w", err)
	}
	return nil
}

func csvRow(r *Run) []string {
	num := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', 6, 64)
	}
	row := []string{r.Key(), r.Scenario, r.Kernel, r.KernelRelease, r.VariantName, strconv.Itoa(r.Rep), string(r.Status), "",
		"", "", "", "", "", "", "", num(r.BudgetS), "", "", "", strconv.FormatBool(r.HasResult && r.Complete), "", "", r.Dir}
	if r.MeetsBudget != nil {
		row[16] = strconv.FormatBool(*r.MeetsBudget)
	}
	row[20] = strings.Join(append(nonEmpty(r.Incomplete), r.Problems...), "; ")
	if !r.HasResult {
		return row
	}
	row[7] = r.Verdict.String()
	row[8] = strings.Join(r.Expected.Errors, " ")
	row[9] = r.Observed.Error
	row[10] = num(r.Observed.DetectS)
	if r.Observed.DetectS != nil {
		row[11] = strconv.FormatFloat(r.Observed.DetectPlusS, 'f', 6, 64)
	}
	row[12] = num(r.PredictedS)
	if w := r.Expected.Window; w != nil {
		row[13], row[14] = num(&w.EarliestS), num(&w.LatestS)
	}
	row[17] = strconv.Itoa(r.Retransmits)
	if l := r.Lateness; l != nil {
		row[18] = num(&l.MaxS)
	}
	row[21] = r.Why
	return row
}

// jsonReport is report.json.
type jsonReport struct {
	Campaign  string     `json:"campaign"`
	Dir       string     `json:"dir"`
	Generated time.Time  `json:"generated"`
	Headline  string     `json:"headline"`
	Totals    Counts     `json:"totals"`
	Planned   int        `json:"planned,omitempty"`
	Notes     []string   `json:"notes,omitempty"`
	Cells     []jsonCell `json:"cells"`
	Runs      []jsonRun  `json:"runs"`
}

// jsonCell is one scenario × kernel × variant.
type jsonCell struct {
	Scenario  string    `json:"scenario"`
	Kernel    string    `json:"kernel"`
	Release   string    `json:"kernel_release,omitempty"`
	Variant   string    `json:"variant_name"`
	Counts    Counts    `json:"counts"`
	Errors    []string  `json:"errors,omitempty"`
	DetectS   []float64 `json:"detect_s,omitempty"`
	Predicted *Range    `json:"predicted_s,omitempty"`
	Window    *Range    `json:"window,omitempty"`
	Budget    *float64  `json:"budget_s,omitempty"`
	Met       int       `json:"budget_met"`
	Missed    int       `json:"budget_missed"`
	// Plot is the data behind the cell's detection plot (shared by the
	// kernels of one scenario × variant).
	Plot Detection `json:"plot"`
}

// jsonRun is one run.
type jsonRun struct {
	ID       string   `json:"id"`
	Status   Status   `json:"status"`
	Scenario string   `json:"scenario"`
	Kernel   string   `json:"kernel"`
	Variant  string   `json:"variant_name"`
	Rep      int      `json:"rep"`
	Why      string   `json:"why,omitempty"`
	RunDir   string   `json:"run_dir,omitempty"`
	Problems []string `json:"problems,omitempty"`
	Timeline Timeline `json:"timeline"`
}

// WriteJSON writes report.json.
func (rep *Report) WriteJSON(w io.Writer) error {
	out := jsonReport{Campaign: rep.Campaign.Name, Dir: rep.Campaign.Dir, Generated: rep.Generated.UTC(), Headline: rep.Headline(),
		Totals: rep.Totals(), Planned: rep.Campaign.Planned, Notes: rep.Campaign.Notes, Cells: []jsonCell{}, Runs: []jsonRun{}}
	for _, f := range rep.Figures {
		d := Detections(f)
		for _, g := range f.Groups {
			out.Cells = append(out.Cells, jsonCell{Scenario: g.Scenario, Kernel: g.Kernel, Release: g.Release, Variant: g.Variant,
				Counts: g.Counts, Errors: g.Errors(), DetectS: g.Detects(), Predicted: g.Predicted(), Window: g.Window(),
				Budget: g.Budget, Met: g.Met, Missed: g.Missed, Plot: d})
			for _, r := range g.Runs {
				jr := jsonRun{ID: r.Key(), Status: r.Status, Scenario: r.Scenario, Kernel: r.Kernel, Variant: r.VariantName, Rep: r.Rep,
					RunDir: r.Dir, Problems: r.Problems, Timeline: rep.Timelines[r.Key()]}
				if r.HasResult {
					jr.Why = r.Why
				}
				out.Runs = append(out.Runs, jr)
			}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write report json: %w", err)
	}
	return nil
}
