package campaign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostlab/hostlab/lab/scenario"
)

// The files of a campaign folder.
const (
	FileYAML     = "campaign.yaml"  // a copy of the campaign file
	FilePlan     = "campaign.json"  // the resolved cells (Plan)
	FileResults  = "results.jsonl"  // one Record per finished cell
	FileFailures = "failures.jsonl" // one line per failed attempt (not a result)
	FileLabs     = "labs.json"      // the labs the runner holds, for a resume after kill -9
	FileSummary  = "summary.txt"    // the summary printed at the end
	DirRuns      = "runs"           // run folders, runs/ID/TIMESTAMP-SCENARIO
	fileLock     = ".lock"
)

// ErrHasResults reports a campaign run into a folder that already holds
// results: resume it instead.
var ErrHasResults = errors.New("the folder already holds results")

// ErrNotCampaign reports a resume of a folder that is not this campaign's.
var ErrNotCampaign = errors.New("not a campaign folder")

// Record is one finished cell: a line of results.jsonl. Its axes come
// first, then every field of the run's result.json at top level.
type Record struct {
	ID            string         `json:"id"`
	Scenario      string         `json:"scenario"`
	Kernel        string         `json:"kernel"`
	KernelRelease string         `json:"kernel_release"`
	Variant       map[string]any `json:"variant"`
	VariantName   string         `json:"variant_name"`
	Rep           int            `json:"rep"`
	// BudgetS is the campaign's budget; MeetsBudget whether the client
	// detected the fault within it (false when it learnt nothing), null
	// without a budget.
	BudgetS     *float64 `json:"budget_s"`
	MeetsBudget *bool    `json:"meets_budget"`
	// Lab is the lab the cell ran in and LabsRunning how many of the
	// campaign's labs ran cells at its start.
	Lab         string `json:"lab"`
	LabsRunning int    `json:"labs_running"`
	// TookS is the cell's wall time, from the run's start to its result.
	TookS float64 `json:"took_s"`
	// StarvationS is how late the client's timers fired beyond their
	// timer-wheel granule, the most of any measured timer (null when none
	// was measured): what the campaign's parallelism is lowered on.
	StarvationS *float64 `json:"starvation_s"`

	scenario.Result
}

// Failure is a cell's failed attempt: the run could not be carried out
// (not a verdict). The cell is tried again, and left for a resume after
// its second failure in one run.
type Failure struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	Lab     string    `json:"lab"`
	Error   string    `json:"error"`
	RunDir  string    `json:"run_dir,omitempty"`
	Attempt int       `json:"attempt"`
}

// Folder is an open campaign folder, locked for one runner.
type Folder struct {
	// Dir is the folder, absolute.
	Dir string
	// Plan is campaign.json; Spec the campaign file it was made from.
	Plan *Plan
	Spec *Spec
	// Done are the finished cells, by id.
	Done map[string]Record
	// Torn says what was done with a torn last line of results.jsonl, or
	// is empty.
	Torn string

	mu      sync.Mutex
	lock    *os.File
	results *os.File
}

// fileSHA is the hex sha256 of a campaign file's content.
func fileSHA(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// Create makes dir the folder of a new campaign: campaign.yaml (data, the
// file's content) and campaign.json (plan), each written atomically. A
// folder that already holds results, or run folders, is refused
// (ErrHasResults: resume it).
func Create(dir string, data []byte, spec *Spec, plan *Plan) (*Folder, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create campaign folder: %w", err)
	}
	f := &Folder{Dir: dir, Plan: plan, Spec: spec, Done: map[string]Record{}}
	if err := f.takeLock(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Join(dir, FileResults)); err == nil && fi.Size() > 0 {
		f.Close()
		return nil, fmt.Errorf("campaign folder %s: %w (%s): continue it with `hostlab campaign resume %s`, or give another --out", dir, ErrHasResults, FileResults, dir)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, DirRuns)); err == nil && len(ents) > 0 {
		f.Close()
		return nil, fmt.Errorf("campaign folder %s: %w (run folders under %s): continue it with `hostlab campaign resume %s`, or give another --out", dir, ErrHasResults, DirRuns, dir)
	}
	js, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		f.Close()
		return nil, err
	}
	for _, w := range []struct {
		name string
		data []byte
	}{{FileYAML, data}, {FilePlan, append(js, '\n')}} {
		if err := writeAtomic(filepath.Join(dir, w.name), w.data); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.openResults(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Open opens the folder of a campaign to resume it: campaign.json must
// match campaign.yaml (same content, same cells), and every line of
// results.jsonl must be one of its cells. A torn last line — a write cut
// by a power loss — is ignored: it is kept aside in
// results.jsonl.torn-TIMESTAMP, cut from results.jsonl, and its cell runs
// again. release gives a kernel package's release (provision.PackageRelease).
func Open(ctx context.Context, dir string, release ReleaseFunc) (*Folder, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var plan Plan
	b, err := os.ReadFile(filepath.Join(dir, FilePlan))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (no %s): start a campaign with `hostlab campaign run FILE --out %s`", dir, ErrNotCampaign, FilePlan, dir)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &plan); err != nil {
		return nil, fmt.Errorf("%s: %w: %s is not valid: %v", dir, ErrNotCampaign, FilePlan, err)
	}
	if plan.Version != PlanVersion {
		return nil, fmt.Errorf("%s: %s has version %d; this hostlab reads version %d", dir, FilePlan, plan.Version, PlanVersion)
	}
	data, err := os.ReadFile(filepath.Join(dir, FileYAML))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", dir, ErrNotCampaign, err)
	}
	if sha := fileSHA(data); sha != plan.FileSHA256 {
		return nil, fmt.Errorf("%s: %w: %s does not match %s (its sha256 is %.12s…, the campaign was made from %.12s…): the folder was edited or mixed with another campaign's", dir, ErrNotCampaign, FileYAML, FilePlan, sha, plan.FileSHA256)
	}
	// The file again, each kernel as resolved when the campaign started.
	kernels := map[string]Kernel{}
	for _, k := range plan.Kernels {
		kernels[k.Written] = k
	}
	resolve := func(_ context.Context, pkg string) (string, error) {
		k, ok := kernels[pkg]
		if !ok || k.Package == "" {
			return "", fmt.Errorf("kernel %s is not in %s", pkg, FilePlan)
		}
		return k.Package, nil
	}
	spec, err := Load(ctx, filepath.Join(dir, FileYAML), data, LoadOptions{Dir: plan.FileDir, Resolve: resolve, Release: release})
	if err != nil {
		return nil, fmt.Errorf("%s: %s cannot be read again: %w", dir, FileYAML, err)
	}
	again := Expand(spec, plan.FileSHA256, plan.Lab)
	if !slices.Equal(again.ids(), plan.ids()) {
		return nil, fmt.Errorf("%s: %w: %s lists other cells than %s makes (%d against %d): made by another hostlab version, or edited", dir, ErrNotCampaign, FilePlan, FileYAML, len(plan.Cells), len(again.Cells))
	}
	again.Created, again.File = plan.Created, plan.File
	f := &Folder{Dir: dir, Plan: again, Spec: spec, Done: map[string]Record{}}
	if err := f.takeLock(); err != nil {
		return nil, err
	}
	if err := f.readResults(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.openResults(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// takeLock makes sure one runner at a time uses the folder (an flock that
// dies with its process).
func (f *Folder) takeLock() error {
	path := filepath.Join(f.Dir, fileLock)
	lf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lock campaign folder: %w", err)
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		lf.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("campaign folder %s is in use by another hostlab (pid %s)", f.Dir, strings.TrimSpace(string(holder)))
		}
		return fmt.Errorf("lock campaign folder: %w", err)
	}
	_ = lf.Truncate(0)
	_, _ = lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	f.lock = lf
	return nil
}

// readResults loads results.jsonl, setting a torn last line aside.
func (f *Folder) readResults() error {
	path := filepath.Join(f.Dir, FileResults)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	recs, good, err := parseResults(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, r := range recs {
		if _, ok := f.Plan.cell(r.ID); !ok {
			return fmt.Errorf("%s: %w: it holds cell %s, which %s does not list (results of another campaign?)", path, ErrNotCampaign, r.ID, FilePlan)
		}
		if _, dup := f.Done[r.ID]; !dup {
			f.Done[r.ID] = r
		}
	}
	if good == len(b) {
		return nil
	}
	torn := b[good:]
	aside := fmt.Sprintf("%s.torn-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if err := writeAtomic(aside, torn); err != nil {
		return err
	}
	rf, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer rf.Close()
	if err := rf.Truncate(int64(good)); err != nil {
		return fmt.Errorf("cut the torn last line of %s: %w", path, err)
	}
	if err := rf.Sync(); err != nil {
		return err
	}
	f.Torn = fmt.Sprintf("%s ended in a torn line (%d bytes, a write cut short): ignored, kept in %s; its cell runs again", FileResults, len(torn), filepath.Base(aside))
	return nil
}

// parseResults reads results.jsonl's records and returns how many bytes
// hold whole lines. Only the last line may be torn (no newline, or not a
// record); a bad line before a good one is an error.
func parseResults(b []byte) ([]Record, int, error) {
	var recs []Record
	off, line := 0, 0
	for off < len(b) {
		line++
		nl := bytes.IndexByte(b[off:], '\n')
		end := len(b)
		if nl >= 0 {
			end = off + nl
		}
		var r Record
		err := json.Unmarshal(b[off:end], &r)
		if err == nil && r.ID == "" {
			err = errors.New("no id")
		}
		if nl < 0 || err != nil {
			if rest := bytes.TrimSpace(bytes.Trim(b[end:], "\x00")); nl >= 0 && len(rest) > 0 {
				return nil, 0, fmt.Errorf("line %d is not a record (%v) and more lines follow: not a torn last line; fix or remove it by hand", line, err)
			}
			return recs, off, nil
		}
		recs = append(recs, r)
		off = end + 1
	}
	return recs, off, nil
}

// openResults opens results.jsonl for appending.
func (f *Folder) openResults() error {
	rf, err := os.OpenFile(filepath.Join(f.Dir, FileResults), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open results: %w", err)
	}
	f.results = rf
	return syncDir(f.Dir)
}

// Append writes a finished cell's record as one line and syncs it to disk
// before returning: a cell is finished once its line is durable.
func (f *Folder) Append(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result of %s: %w", r.ID, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.Done[r.ID]; dup {
		return fmt.Errorf("cell %s is already finished", r.ID)
	}
	if _, err := f.results.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("append result of %s: %w", r.ID, err)
	}
	if err := f.results.Sync(); err != nil {
		return fmt.Errorf("sync results: %w", err)
	}
	f.Done[r.ID] = r
	return nil
}

// Finished returns a copy of the finished cells' records.
func (f *Folder) Finished() map[string]Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]Record, len(f.Done))
	for k, v := range f.Done {
		out[k] = v
	}
	return out
}

// AppendFailure notes a failed attempt in failures.jsonl.
func (f *Folder) AppendFailure(x Failure) error {
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, err := os.OpenFile(filepath.Join(f.Dir, FileFailures), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer ff.Close()
	if _, err := ff.Write(append(b, '\n')); err != nil {
		return err
	}
	return ff.Sync()
}

// Failures reads failures.jsonl (whole lines only).
func (f *Folder) Failures() []Failure {
	b, _ := os.ReadFile(filepath.Join(f.Dir, FileFailures))
	var out []Failure
	for _, line := range bytes.Split(b, []byte("\n")) {
		var x Failure
		if json.Unmarshal(line, &x) == nil && x.ID != "" {
			out = append(out, x)
		}
	}
	return out
}

// labsFile is labs.json: the labs a runner holds.
type labsFile struct {
	Labs []string `json:"labs"`
}

// SetLabs records the labs the runner holds (atomically).
func (f *Folder) SetLabs(names []string) error {
	b, err := json.Marshal(labsFile{Labs: slices.Sorted(slices.Values(names))})
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(f.Dir, FileLabs), append(b, '\n'))
}

// Labs are the labs an earlier runner recorded as held: after a kill -9
// they are still up.
func (f *Folder) Labs() []string {
	var lf labsFile
	b, err := os.ReadFile(filepath.Join(f.Dir, FileLabs))
	if err != nil || json.Unmarshal(b, &lf) != nil {
		return nil
	}
	return lf.Labs
}

// RunsDir is the folder of a cell's run folders.
func (f *Folder) RunsDir(id string) string { return filepath.Join(f.Dir, DirRuns, id) }

// Close releases the folder.
func (f *Folder) Close() error {
	var errs []error
	if f.results != nil {
		errs = append(errs, f.results.Close())
	}
	if f.lock != nil {
		errs = append(errs, f.lock.Close())
	}
	return errors.Join(errs...)
}

// writeAtomic writes data to path through a temporary file in the same
// folder, synced, then renamed over path, and syncs the folder.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a folder's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
