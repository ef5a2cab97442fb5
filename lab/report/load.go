package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/scenario"
)

// File names in a campaign folder.
const (
	// ResultsFile holds one JSON line per finished cell.
	ResultsFile = "results.jsonl"
	// CampaignFile is the resolved cell list (optional).
	CampaignFile = "campaign.json"
	// HTMLFile, CSVFile and JSONFile are what Write produces.
	HTMLFile = "report.html"
	CSVFile  = "report.csv"
	JSONFile = "report.json"
)

// ErrNoRuns reports a folder with neither results.jsonl nor any run folder.
var ErrNoRuns = errors.New("no results.jsonl and no run folder")

// Status is a run's place in the verdict counts: its verdict, or incomplete
// when the run did not finish (whatever verdict it recorded).
type Status string

// The statuses, in the order the page counts them.
const (
	StatusExpected   Status = "expected"
	StatusUnexpected Status = "unexpected"
	StatusUnknown    Status = "unknown"
	StatusIncomplete Status = "incomplete"
)

// Statuses lists every status in display order.
var Statuses = []Status{StatusExpected, StatusUnexpected, StatusUnknown, StatusIncomplete}

// Row is one line of results.jsonl: the campaign's fields for the cell, then
// the run's result.json at top level.
type Row struct {
	// ID names the cell and repetition.
	ID string `json:"id"`
	// Kernel is the kernel as the campaign file wrote it; KernelRelease the
	// release it resolved to (e.g. 6.1.0-57-amd64).
	Kernel        string `json:"kernel"`
	KernelRelease string `json:"kernel_release"`
	// Variant are the `hostlab run` flags of the cell; VariantName spells
	// them as on the command line ("" for the scenario's defaults).
	Variant     map[string]any `json:"variant,omitempty"`
	VariantName string         `json:"variant_name"`
	// Rep is the 1-based repetition.
	Rep int `json:"rep"`
	// BudgetS is the campaign's detection budget in seconds (nil: none), and
	// MeetsBudget whether this run met it (nil: cannot tell).
	BudgetS     *float64 `json:"budget_s,omitempty"`
	MeetsBudget *bool    `json:"meets_budget,omitempty"`
	scenario.Result
}

// Run is one run of the campaign as the report sees it.
type Run struct {
	Row
	// Dir is the run folder found on disk ("" when it is missing).
	Dir string
	// Line is the run's line in results.jsonl (0: a folder without one).
	Line int
	// Status places the run in the verdict counts.
	Status Status
	// Problems say what is missing or odd about the run's evidence.
	Problems []string
	// HasResult is true when the run recorded a result (a line, or a
	// result.json); false for a folder the run left behind without one.
	HasResult bool
	// key and anchor are the run's unique key and HTML id, set by Load.
	key, anchor string
}

// Anchor is the run's HTML id.
func (r *Run) Anchor() string {
	if r.anchor != "" {
		return r.anchor
	}
	return "run-" + slug(r.Key())
}

// Key identifies the run within the campaign: its id, else its folder's
// name, made unique by Load with a "#N" suffix (a cell run again).
func (r *Run) Key() string {
	if r.key != "" {
		return r.key
	}
	return r.baseKey()
}

func (r *Run) baseKey() string {
	switch {
	case r.ID != "":
		return r.ID
	case r.Dir != "":
		return filepath.Base(r.Dir)
	}
	return fmt.Sprintf("line-%d", r.Line)
}

// Campaign is a campaign folder loaded for the report.
type Campaign struct {
	// Dir is the campaign folder and Name its base name.
	Dir  string
	Name string
	// Runs are the runs in the order results.jsonl lists them, then run
	// folders without a line.
	Runs []*Run
	// Notes say what the loader had to skip or guess (a torn last line, an
	// unreadable campaign.json).
	Notes []string
	// Planned is the number of cells campaign.json lists (0: unknown).
	Planned int
	// Plain is true for a folder of plain runs (no results.jsonl).
	Plain bool
}

// Load reads a campaign folder: results.jsonl, campaign.json if present,
// and every run folder under it.
func Load(dir string) (*Campaign, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("load campaign %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("load campaign: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("load campaign %s: not a folder", dir)
	}
	c := &Campaign{Dir: abs, Name: filepath.Base(abs)}
	c.readPlan()
	folders, err := runFolders(abs)
	if err != nil {
		return nil, fmt.Errorf("load campaign %s: %w", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(abs, ResultsFile))
	switch {
	case err == nil:
		c.readResults(b)
	case errors.Is(err, fs.ErrNotExist):
		if len(folders) == 0 && isRunFolder(abs) {
			folders = []string{abs} // A single run's folder.
		}
		if len(folders) == 0 {
			return nil, fmt.Errorf("load campaign %s: %w", dir, ErrNoRuns)
		}
		c.Plain = true
	default:
		return nil, fmt.Errorf("load campaign %s: %w", dir, err)
	}
	seen := map[string]bool{}
	for _, r := range c.Runs {
		if r.Dir != "" {
			seen[r.Dir] = true
		}
	}
	for _, f := range folders {
		if !seen[f] {
			c.Runs = append(c.Runs, c.folderRun(f))
		}
	}
	if c.Plain {
		c.namePlain()
	} else {
		c.adopt()
	}
	keys, anchors := map[string]bool{}, map[string]bool{}
	for _, r := range c.Runs {
		r.Status = statusOf(r)
		r.key = unique(keys, r.baseKey(), "#")
		r.anchor = unique(anchors, "run-"+slug(r.key), "-")
	}
	return c, nil
}

// readResults parses results.jsonl into runs.
func (c *Campaign) readResults(b []byte) {
	lines := bytes.Split(b, []byte("\n"))
	last := len(lines) - 1
	for last >= 0 && len(bytes.TrimSpace(lines[last])) == 0 {
		last--
	}
	for i, line := range lines[:last+1] {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		row, err := decodeRow(line)
		if err != nil {
			if i == last {
				c.Notes = append(c.Notes, fmt.Sprintf("%s: the last line (%d, %d bytes) is torn and was ignored: the campaign was cut off while writing it, or is writing it now (%v)", ResultsFile, i+1, len(line), err))
			} else {
				c.Notes = append(c.Notes, fmt.Sprintf("%s: line %d is unreadable and was skipped: %v", ResultsFile, i+1, err))
			}
			continue
		}
		r := &Run{Row: *row, Line: i + 1, HasResult: true}
		r.Dir = c.resolve(row.RunDir)
		if r.Dir == "" {
			if row.RunDir == "" {
				r.Problems = append(r.Problems, "the line names no run folder")
			} else {
				r.Problems = append(r.Problems, "run folder "+row.RunDir+" not found")
			}
		}
		c.Runs = append(c.Runs, r)
	}
}

// decodeRow decodes one results.jsonl line; a verdict that is missing or
// not one of the three (an interrupted run's line) decodes as Unknown.
func decodeRow(line []byte) (*Row, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return nil, err
	}
	if v, ok := fields["verdict"]; ok {
		var s string
		var vv model.Verdict
		if json.Unmarshal(v, &s) != nil || vv.UnmarshalText([]byte(s)) != nil {
			delete(fields, "verdict")
			line, _ = json.Marshal(fields)
		}
	}
	var row Row
	if err := json.Unmarshal(line, &row); err != nil {
		return nil, err
	}
	return &row, nil
}

// resolve finds a run folder named in results.jsonl on disk: as written,
// relative to the campaign, or — for a campaign folder moved or copied
// elsewhere — by the part of the path after "runs/" or after the campaign's
// own name.
func (c *Campaign) resolve(runDir string) string {
	if runDir == "" {
		return ""
	}
	var cands []string
	if filepath.IsAbs(runDir) {
		cands = append(cands, runDir)
	} else {
		cands = append(cands, filepath.Join(c.Dir, runDir))
	}
	slashed := filepath.ToSlash(runDir)
	if i := strings.LastIndex(slashed, "/runs/"); i >= 0 {
		cands = append(cands, filepath.Join(c.Dir, slashed[i+1:]))
	}
	if i := strings.LastIndex(slashed, "/"+c.Name+"/"); i >= 0 {
		cands = append(cands, filepath.Join(c.Dir, slashed[i+len(c.Name)+2:]))
	}
	for _, p := range cands {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return filepath.Clean(p)
		}
	}
	return ""
}

// unique returns s, or s with the first free suffix sep+N, and marks it
// taken.
func unique(taken map[string]bool, s, sep string) string {
	u := s
	for n := 2; taken[u]; n++ {
		u = fmt.Sprintf("%s%s%d", s, sep, n)
	}
	taken[u] = true
	return u
}

// runFolderName matches a run folder's name: TIMESTAMP-SCENARIO.
var runFolderName = regexp.MustCompile(`^(\d{8}T\d{6}Z)-([a-z0-9-]+)$`)

// runFolders lists the run folders under dir: folders named
// TIMESTAMP-SCENARIO, or holding a result.json or timeline.jsonl.
func runFolders(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil
		}
		if !d.IsDir() || p == dir {
			return nil
		}
		if runFolderName.MatchString(d.Name()) || isRunFolder(p) {
			out = append(out, filepath.Clean(p))
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// isRunFolder reports whether dir holds a run's result or timeline.
func isRunFolder(dir string) bool {
	return exists(filepath.Join(dir, "result.json")) || exists(filepath.Join(dir, "timeline.jsonl"))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// folderRun makes a run of a folder that has no line in results.jsonl: its
// result.json when there is one, else what its name and timeline say.
func (c *Campaign) folderRun(dir string) *Run {
	r := &Run{Dir: dir}
	rel, _ := filepath.Rel(c.Dir, dir)
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err == nil {
		row, derr := decodeRow(b)
		if derr == nil {
			r.Row, r.HasResult = *row, true
		} else {
			r.Problems = append(r.Problems, "result.json unreadable: "+derr.Error())
		}
	} else {
		r.Problems = append(r.Problems, "no result.json: the run was interrupted before it recorded its outcome")
	}
	if r.Scenario == "" {
		if m := runFolderName.FindStringSubmatch(filepath.Base(dir)); m != nil {
			r.Scenario = m[2]
		} else {
			r.Scenario = "?"
		}
	}
	if r.KernelRelease == "" {
		r.KernelRelease = r.Config.Kernel["client"]
	}
	if r.Kernel == "" {
		r.Kernel = r.KernelRelease
	}
	if c.Plain {
		r.VariantName = plainVariant(rel, r.Scenario, r.Config.Options)
		if m := repDir.FindStringSubmatch(filepath.Base(filepath.Dir(dir))); m != nil {
			fmt.Sscan(m[1], &r.Rep)
		}
		return r
	}
	r.VariantName = unrecorded
	r.Problems = append(r.Problems, "no line in "+ResultsFile+": the campaign did not record this run (interrupted?)")
	return r
}

// namePlain names each plain variant (a folder of a bench's layout, e.g.
// kill-server-read-event) by its flags, as the first of its runs with a
// result records them, so that its runs without one stay with it.
func (c *Campaign) namePlain() {
	flags := map[[2]string]string{}
	for _, r := range c.Runs {
		k := [2]string{r.Scenario, r.VariantName}
		if _, ok := flags[k]; !ok && r.HasResult {
			flags[k] = optionFlags(r.Config.Options)
		}
	}
	for _, r := range c.Runs {
		if f, ok := flags[[2]string{r.Scenario, r.VariantName}]; ok {
			r.VariantName = f
		}
	}
}

// unrecorded is the variant name of a run folder without a line, until its
// options match a recorded run's.
const unrecorded = "(no line in " + ResultsFile + ")"

// adopt gives each run without a line the cell of a recorded run with the
// same scenario, kernel and options, so that it is counted with its cell.
func (c *Campaign) adopt() {
	type cell struct{ kernel, variant string }
	cells := map[string]cell{}
	key := func(r *Run) string {
		o, _ := json.Marshal(r.Config.Options)
		return r.Scenario + "\x00" + r.Config.Kernel["client"] + "\x00" + string(o)
	}
	for _, r := range c.Runs {
		if r.Line > 0 {
			cells[key(r)] = cell{r.Kernel, r.VariantName}
		}
	}
	for _, r := range c.Runs {
		if r.Line == 0 && r.VariantName == unrecorded && r.HasResult {
			if k, ok := cells[key(r)]; ok {
				r.Kernel, r.VariantName = k.kernel, k.variant
			}
		}
	}
}

// repDir matches the bench's repetition folders: rep-K.
var repDir = regexp.MustCompile(`^rep-(\d+)$`)

// plainVariant names the variant of a plain run: the folder layout's
// variant (bench verdicts: VARIANT/rep-K/RUN), else the run's options that
// differ from the defaults.
func plainVariant(rel, scen string, o scenario.Options) string {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	parts = parts[:len(parts)-1]
	if n := len(parts); n > 0 && repDir.MatchString(parts[n-1]) {
		parts = parts[:n-1]
	}
	if len(parts) > 0 {
		v := strings.Join(parts, "/")
		if v == scen {
			return ""
		}
		return strings.TrimPrefix(v, scen+"-")
	}
	return optionFlags(o)
}

// optionFlags spells the options that differ from `hostlab run`'s defaults
// as flags.
func optionFlags(o scenario.Options) string {
	var f []string
	add := func(s ...string) { f = append(f, s...) }
	if o.Client != "" && o.Client != "go" {
		add("--client", string(o.Client))
	}
	if o.Read != "" && o.Read != "blocking" {
		add("--read", o.Read)
	}
	if o.Idle {
		add("--idle")
	}
	if o.Keepalive != "" {
		add("--keepalive", o.Keepalive)
	}
	if o.UserTimeout > 0 {
		add("--user-timeout", o.UserTimeout.String())
	}
	if o.ReadTimeout > 0 {
		add("--read-timeout", o.ReadTimeout.String())
	}
	if o.Interval > 0 && o.Interval != time.Second {
		add("--interval", o.Interval.String())
	}
	for _, s := range o.Sysctls {
		add("--sysctl", s)
	}
	if o.ServerSigterm != "" && o.ServerSigterm != "default" {
		add("--server-sigterm", o.ServerSigterm)
	}
	if o.SigpipeIgnore {
		add("--sigpipe-ignore")
	}
	if o.Reboot != "" && o.Reboot != "reset" {
		add("--reboot", o.Reboot)
	}
	if o.MaxWait > 0 {
		add("--max-wait", o.MaxWait.String())
	}
	return strings.Join(f, " ")
}

// readPlan reads the number of cells campaign.json plans, if it says.
func (c *Campaign) readPlan() {
	b, err := os.ReadFile(filepath.Join(c.Dir, CampaignFile))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.Notes = append(c.Notes, CampaignFile+": "+err.Error())
		}
		return
	}
	var plan struct {
		Cells []json.RawMessage `json:"cells"`
		Runs  []json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal(b, &plan); err != nil {
		var list []json.RawMessage
		if json.Unmarshal(b, &list) != nil {
			c.Notes = append(c.Notes, CampaignFile+" is unreadable: "+err.Error())
			return
		}
		plan.Cells = list
	}
	c.Planned = max(len(plan.Cells), len(plan.Runs))
}

// statusOf places a run in the verdict counts.
func statusOf(r *Run) Status {
	if !r.HasResult || !r.Complete {
		return StatusIncomplete
	}
	switch r.Verdict {
	case model.Expected:
		return StatusExpected
	case model.Unexpected:
		return StatusUnexpected
	}
	return StatusUnknown
}

// slug makes s an HTML id and CSS selector: lowercase letters and digits
// joined by single dashes.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
