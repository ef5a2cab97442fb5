package campaign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/scenario"
)

// fakeLab is a lab of fakeBackend.
type fakeLab struct{ name, release string }

func (l fakeLab) Name() string          { return l.name }
func (l fakeLab) KernelRelease() string { return l.release }
func (l fakeLab) Close()                {}

// fakeBackend runs cells without VMs: each Execute asks outcome what the
// run gives.
type fakeBackend struct {
	mu      sync.Mutex
	up      map[string]bool // labs up
	ups     []string
	downs   []string
	execs   map[string]int // Execute calls by cell id
	n       int
	outcome func(ctx context.Context, c Cell, call int) (*scenario.Result, error)
	upErr   func(name string) error
}

func newFake(outcome func(ctx context.Context, c Cell, call int) (*scenario.Result, error)) *fakeBackend {
	return &fakeBackend{up: map[string]bool{}, execs: map[string]int{}, outcome: outcome}
}

func (b *fakeBackend) Up(_ context.Context, name string, k Kernel, routed bool) (Lab, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.up[name] {
		return nil, fmt.Errorf("up lab %s: %w", name, lab.ErrLabExists)
	}
	if b.upErr != nil {
		if err := b.upErr(name); err != nil {
			return nil, err
		}
	}
	b.up[name] = true
	b.ups = append(b.ups, name)
	return fakeLab{name, k.Release}, nil
}

func (b *fakeBackend) Down(_ context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.up, name)
	b.downs = append(b.downs, name)
	return nil
}

func (b *fakeBackend) Execute(ctx context.Context, l Lab, c Cell, out string, _ *slog.Logger) (*scenario.Result, error) {
	b.mu.Lock()
	if !b.up[l.Name()] {
		b.mu.Unlock()
		return nil, fmt.Errorf("lab %s is not up", l.Name())
	}
	b.execs[c.ID]++
	b.n++
	call := b.n
	b.mu.Unlock()
	dir := filepath.Join(out, fmt.Sprintf("%d-%s", call, c.Scenario))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	res, err := b.outcome(ctx, c, call)
	if res != nil {
		res.RunDir, res.Scenario = dir, c.Scenario
	}
	return res, err
}

// expected is a completed run that detected at d seconds (predicted p).
func expected(d, p float64) *scenario.Result {
	return &scenario.Result{Version: 1, Verdict: model.Expected, Complete: true, PredictedS: &p,
		Observed: scenario.Observed{Error: "ETIMEDOUT", DetectS: &d}}
}

// folderFor makes a campaign folder for a file's text.
func folderFor(t *testing.T, dir, text string) *Folder {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Start(context.Background(), path, dir, LabSettings{MemoryMiB: 128}, fakeLoad)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// resultLines reads results.jsonl's records.
func resultLines(t *testing.T, dir string) []Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, FileResults))
	if err != nil {
		t.Fatal(err)
	}
	recs, n, err := parseResults(b)
	if err != nil || n != len(b) {
		t.Fatalf("results.jsonl: %v (%d of %d bytes whole)", err, n, len(b))
	}
	return recs
}

const twoKernels = `scenarios: [power-off]
kernels: [linux-image-amd64, linux-image-6.12-amd64]
variants:
  - {user-timeout: 6s}
  - {sysctl: ["client:net.ipv4.tcp_retries2=5"]}
repetitions: 2
budget: 10s
`

func TestRunAllCells(t *testing.T) {
	dir := t.TempDir()
	f := folderFor(t, dir, twoKernels)
	defer f.Close()
	b := newFake(func(_ context.Context, c Cell, _ int) (*scenario.Result, error) {
		if c.VariantName == "--user-timeout 6s" {
			return expected(7.5, 7.4), nil
		}
		return expected(14.9, 14.3), nil
	})
	var progress bytes.Buffer
	oc, err := Run(context.Background(), f, b, RunOptions{Parallel: 2, LabPrefix: "t-", Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if oc.Ran != 8 || len(oc.Left) != 0 {
		t.Fatalf("outcome %+v", oc)
	}
	recs := resultLines(t, dir)
	if len(recs) != 8 {
		t.Fatalf("%d lines", len(recs))
	}
	dirs := map[string]bool{}
	for _, r := range recs {
		if b.execs[r.ID] != 1 {
			t.Errorf("cell %s executed %d times", r.ID, b.execs[r.ID])
		}
		if dirs[r.RunDir] || !strings.HasPrefix(r.RunDir, filepath.Join(dir, DirRuns, r.ID)+"/") {
			t.Errorf("run folder %s of %s", r.RunDir, r.ID)
		}
		dirs[r.RunDir] = true
		if r.MeetsBudget == nil || *r.MeetsBudget != (r.VariantName == "--user-timeout 6s") {
			t.Errorf("%s meets_budget %v", r.ID, r.MeetsBudget)
		}
		if r.KernelRelease == "" || r.Lab == "" || r.BudgetS == nil || *r.BudgetS != 10 {
			t.Errorf("record %+v", r)
		}
	}
	// Each lab bound to one kernel and reused across its cells: the two
	// workers start on different kernels, and no lab is brought up twice.
	if len(b.ups) < 2 || b.ups[0][:4] == b.ups[1][:4] || len(b.up) != 0 {
		t.Errorf("labs brought up %v, still up %v; want the two first on different kernels, all down at the end", b.ups, b.up)
	}
	for i, n := range b.ups {
		if slices.Contains(b.ups[:i], n) {
			t.Errorf("lab %s brought up twice: %v", n, b.ups)
		}
	}
	for _, r := range recs {
		if !strings.HasPrefix(r.Lab, map[string]string{"linux-image-amd64": "t-k1-", "linux-image-6.12-amd64": "t-k2-"}[r.Kernel]) {
			t.Errorf("cell %s of kernel %s ran in lab %s", r.ID, r.Kernel, r.Lab)
		}
	}
	if labs := f.Labs(); len(labs) != 0 {
		t.Errorf("labs.json still lists %v", labs)
	}
	if !strings.Contains(progress.String(), "ETA") {
		t.Errorf("no ETA in the progress:\n%s", progress.String())
	}
}

// TestResultsLineFormat: a line carries the axes, then result.json's fields
// at top level.
func TestResultsLineFormat(t *testing.T) {
	dir := t.TempDir()
	f := folderFor(t, dir, "scenarios: [power-off]\nvariants:\n  - {idle: true, keepalive: \"4s,2s,3\"}\nbudget: 20s\n")
	defer f.Close()
	b := newFake(func(context.Context, Cell, int) (*scenario.Result, error) {
		r := expected(10.4, 10)
		r.Lateness = &scenario.Lateness{Timers: 3, MaxS: 0.02, MeanS: 0.01, Source: "wire"}
		return r, nil
	})
	if _, err := Run(context.Background(), f, b, RunOptions{LabPrefix: "t-"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, FileResults))
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(raw), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "scenario", "kernel", "kernel_release", "variant", "variant_name", "rep", "budget_s", "meets_budget",
		"starvation_s", "verdict", "why", "expected", "observed", "predicted_s", "lateness", "run_dir", "complete", "version"} {
		if _, ok := m[k]; !ok {
			t.Errorf("line lacks %q: %s", k, raw)
		}
	}
	if m["kernel"] != "linux-image-amd64" || m["kernel_release"] != "6.1.0-57-amd64" || m["variant_name"] != "--idle --keepalive 4s,2s,3" || m["meets_budget"] != true {
		t.Errorf("line %s", raw)
	}
	if v, ok := m["variant"].(map[string]any); !ok || v["idle"] != true || v["keepalive"] != "4s,2s,3" {
		t.Errorf("variant %v", m["variant"])
	}
	if !strings.HasPrefix(string(raw), `{"id":`) {
		t.Errorf("line does not start with the id: %.40s", raw)
	}
}

// TestInterruptAndResume: Ctrl-C after the first cell, a second cell cut
// in the middle, then a resume: every cell finishes once, none runs again
// once finished.
func TestInterruptAndResume(t *testing.T) {
	dir := t.TempDir()
	f := folderFor(t, dir, "scenarios: [kill-server]\nrepetitions: 3\n")
	ctx, cancel := context.WithCancel(context.Background())
	b := newFake(func(ctx context.Context, c Cell, call int) (*scenario.Result, error) {
		if call == 2 {
			cancel() // Ctrl-C while the second cell runs
			<-ctx.Done()
			return &scenario.Result{Complete: false}, fmt.Errorf("kill-server: %w (partial evidence)", ctx.Err())
		}
		return expected(1, 0.85), nil
	})
	oc, err := Run(ctx, f, b, RunOptions{LabPrefix: "t-"})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "campaign resume") {
		t.Fatalf("interrupted run: %v", err)
	}
	if oc.Ran != 1 || len(oc.Left) != 2 {
		t.Fatalf("outcome %+v", oc)
	}
	f.Close()
	if n := len(resultLines(t, dir)); n != 1 {
		t.Fatalf("%d lines after the interrupt", n)
	}
	if len(b.up) != 0 {
		t.Errorf("labs left up after Ctrl-C: %v", b.up)
	}
	g, err := Open(context.Background(), dir, fakeRelease)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if len(g.Done) != 1 {
		t.Fatalf("resume sees %d finished cells", len(g.Done))
	}
	oc, err = Run(context.Background(), g, b, RunOptions{LabPrefix: "t-"})
	if err != nil || oc.Ran != 2 {
		t.Fatalf("resume: %+v, %v", oc, err)
	}
	recs := resultLines(t, dir)
	if len(recs) != 3 {
		t.Fatalf("%d lines after the resume", len(recs))
	}
	first := recs[0].ID
	if b.execs[first] != 1 {
		t.Errorf("finished cell %s executed %d times", first, b.execs[first])
	}
	ids := map[string]bool{}
	for _, r := range recs {
		if ids[r.ID] {
			t.Errorf("cell %s recorded twice", r.ID)
		}
		ids[r.ID] = true
	}
	// The interrupted cell's partial folder stays next to its new one.
	for _, r := range recs {
		ents, _ := os.ReadDir(g.RunsDir(r.ID))
		if b.execs[r.ID] == 2 && len(ents) != 2 {
			t.Errorf("interrupted cell %s has %d run folders; want its partial one and the finished one", r.ID, len(ents))
		}
	}
}

// TestResumeTornLine: a power loss mid-append leaves a torn last line; the
// resume sets it aside and runs its cell again, and nothing else.
func TestResumeTornLine(t *testing.T) {
	dir := t.TempDir()
	f := folderFor(t, dir, "scenarios: [kill-server]\nrepetitions: 3\n")
	b := newFake(func(context.Context, Cell, int) (*scenario.Result, error) { return expected(1, 0.85), nil })
	if _, err := Run(context.Background(), f, b, RunOptions{LabPrefix: "t-"}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	path := filepath.Join(dir, FileResults)
	raw, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(raw, []byte("\n"))
	// The third line was cut half-way.
	torn := append(append([]byte{}, lines[0]...), lines[1]...)
	torn = append(torn, lines[2][:len(lines[2])/2]...)
	if err := os.WriteFile(path, torn, 0o644); err != nil {
		t.Fatal(err)
	}
	var cut Record
	_ = json.Unmarshal(lines[2], &cut)

	g, err := Open(context.Background(), dir, fakeRelease)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if len(g.Done) != 2 || !strings.Contains(g.Torn, "torn") {
		t.Fatalf("done %d, torn %q", len(g.Done), g.Torn)
	}
	if aside, _ := filepath.Glob(path + ".torn-*"); len(aside) != 1 {
		t.Errorf("torn line not kept aside: %v", aside)
	}
	before := map[string]int{}
	for k, v := range b.execs {
		before[k] = v
	}
	oc, err := Run(context.Background(), g, b, RunOptions{LabPrefix: "t-"})
	if err != nil || oc.Ran != 1 {
		t.Fatalf("resume %+v %v", oc, err)
	}
	for id, n := range b.execs {
		want := before[id]
		if id == cut.ID {
			want++
		}
		if n != want {
			t.Errorf("cell %s executed %d times; want %d", id, n, want)
		}
	}
	if recs := resultLines(t, dir); len(recs) != 3 || recs[2].ID != cut.ID {
		t.Errorf("after the resume: %d lines", len(recs))
	}
}

func TestParseResults(t *testing.T) {
	good := `{"id":"a","verdict":"expected"}` + "\n" + `{"id":"b","verdict":"expected"}` + "\n"
	for _, tt := range []struct {
		name  string
		in    string
		recs  int
		whole int
		bad   bool
	}{
		{"whole", good, 2, len(good), false},
		{"empty", "", 0, 0, false},
		{"torn", good + `{"id":"c","verd`, 2, len(good), false},
		{"no newline", good + `{"id":"c","verdict":"expected"}`, 2, len(good), false},
		{"zeros", good + "\x00\x00\x00\x00", 2, len(good), false},
		{"zero line", good + "\x00\x00\x00\n", 2, len(good), false},
		{"bad middle", `{"id":"a"}` + "\n" + "garbage\n" + `{"id":"b"}` + "\n", 0, 0, true},
	} {
		recs, whole, err := parseResults([]byte(tt.in))
		if (err != nil) != tt.bad || err == nil && (len(recs) != tt.recs || whole != tt.whole) {
			t.Errorf("%s: %d records, %d whole bytes, %v; want %d, %d, error %v", tt.name, len(recs), whole, err, tt.recs, tt.whole, tt.bad)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	f := folderFor(t, dir, "scenarios: [kill-server]\nrepetitions: 2\n")
	b := newFake(func(context.Context, Cell, int) (*scenario.Result, error) { return expected(1, 0.85), nil })
	if _, err := Run(context.Background(), f, b, RunOptions{LabPrefix: "t-"}); err != nil {
		t.Fatal(err)
	}
	// While a runner holds it, nobody else gets it.
	if _, err := Open(context.Background(), dir, fakeRelease); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("open of a held folder: %v", err)
	}
	f.Close()
	// A run into a folder with results points to resume.
	path := filepath.Join(t.TempDir(), "c.yaml")
	_ = os.WriteFile(path, []byte("scenarios: [kill-server]\n"), 0o644)
	if _, err := Start(context.Background(), path, dir, LabSettings{}, fakeLoad); !errors.Is(err, ErrHasResults) || !strings.Contains(err.Error(), "campaign resume") {
		t.Errorf("run into a folder with results: %v", err)
	}

	// Not a campaign folder.
	if _, err := Open(context.Background(), t.TempDir(), fakeRelease); !errors.Is(err, ErrNotCampaign) {
		t.Errorf("empty folder: %v", err)
	}
	// Another campaign's results.
	other := t.TempDir()
	g := folderFor(t, other, "scenarios: [sigpipe]\n")
	g.Close()
	foreign, _ := os.ReadFile(filepath.Join(dir, FileResults))
	_ = os.WriteFile(filepath.Join(other, FileResults), foreign, 0o644)
	if _, err := Open(context.Background(), other, fakeRelease); !errors.Is(err, ErrNotCampaign) || !strings.Contains(err.Error(), "another campaign") {
		t.Errorf("foreign results: %v", err)
	}
	// campaign.yaml edited after the start.
	_ = os.WriteFile(filepath.Join(dir, FileYAML), []byte("scenarios: [kill-server]\nrepetitions: 3\n"), 0o644)
	if _, err := Open(context.Background(), dir, fakeRelease); !errors.Is(err, ErrNotCampaign) || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("edited campaign.yaml: %v", err)
	}
	// campaign.json of another campaign.
	third := t.TempDir()
	h := folderFor(t, third, "scenarios: [shutdown]\n")
	h.Close()
	pj, _ := os.ReadFile(filepath.Join(third, FilePlan))
	_ = os.WriteFile(filepath.Join(dir, FilePlan), pj, 0o644)
	if _, err := Open(context.Background(), dir, fakeRelease); !errors.Is(err, ErrNotCampaign) {
		t.Errorf("another campaign's campaign.json: %v", err)
	}
}

// TestFailedCellRetried: a run that fails is tried again on a fresh lab;
// failing twice, it is left for a resume, never recorded as finished.
func TestFailedCellRetried(t *testing.T) {
	dir := t.TempDir()
	f := folderFor(t, dir, "scenarios: [kill-server, shutdown]\n")
	defer f.Close()
	b := newFake(func(_ context.Context, c Cell, call int) (*scenario.Result, error) {
		if c.Scenario == "shutdown" || call == 1 {
			return &scenario.Result{}, errors.New("prepare guests: ssh: connection refused")
		}
		return expected(1, 0.85), nil
	})
	oc, err := Run(context.Background(), f, b, RunOptions{LabPrefix: "t-"})
	if err != nil {
		t.Fatal(err)
	}
	recs := resultLines(t, dir)
	if len(recs) != 1 || recs[0].Scenario != "kill-server" {
		t.Fatalf("recorded %+v", recs)
	}
	if len(oc.Left) != 1 || !strings.Contains(fmt.Sprint(oc.Left), "failed twice") {
		t.Errorf("left %v", oc.Left)
	}
	if fs := f.Failures(); len(fs) != 3 {
		t.Errorf("%d failures noted; want 3 (kill-server once, shutdown twice)", len(fs))
	}
	if len(b.ups) != 3 {
		t.Errorf("labs brought up %v; want a fresh lab after each failure", b.ups)
	}
}

// TestLabUpFails: a kind of lab that cannot come up twice leaves its cells
// for a resume; the others run.
func TestLabUpFails(t *testing.T) {
	dir := t.TempDir()
	f := folderFor(t, dir, "scenarios: [kill-server]\nkernels: [linux-image-amd64, linux-image-6.12-amd64]\n")
	defer f.Close()
	b := newFake(func(context.Context, Cell, int) (*scenario.Result, error) { return expected(1, 0.85), nil })
	b.upErr = func(name string) error {
		if strings.Contains(name, "k2") {
			return errors.New("guest did not answer SSH")
		}
		return nil
	}
	oc, err := Run(context.Background(), f, b, RunOptions{LabPrefix: "t-"})
	if err != nil {
		t.Fatal(err)
	}
	if oc.Ran != 1 || len(oc.Left) != 1 {
		t.Errorf("outcome %+v", oc)
	}
	// A lab of the same name that is not the campaign's stops it.
	g := folderFor(t, t.TempDir(), "scenarios: [kill-server]\n")
	defer g.Close()
	b2 := newFake(func(context.Context, Cell, int) (*scenario.Result, error) { return expected(1, 0.85), nil })
	b2.up["t-k1-1"] = true
	if _, err := Run(context.Background(), g, b2, RunOptions{LabPrefix: "t-"}); !errors.Is(err, lab.ErrLabExists) {
		t.Errorf("foreign lab: %v", err)
	}
	if !b2.up["t-k1-1"] {
		t.Error("a lab not the campaign's was taken down")
	}
}

// TestLeftoverLabs: labs a killed runner left up (labs.json) are taken
// down before the resume runs.
func TestLeftoverLabs(t *testing.T) {
	dir := t.TempDir()
	f := folderFor(t, dir, "scenarios: [kill-server]\n")
	if err := f.SetLabs([]string{"t-k1-1"}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	g, err := Open(context.Background(), dir, fakeRelease)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	b := newFake(func(context.Context, Cell, int) (*scenario.Result, error) { return expected(1, 0.85), nil })
	b.up["t-k1-1"] = true // still up after kill -9
	if _, err := Run(context.Background(), g, b, RunOptions{LabPrefix: "t-"}); err != nil {
		t.Fatal(err)
	}
	if len(b.downs) < 2 || b.downs[0] != "t-k1-1" {
		t.Errorf("downs %v; want the leftover first", b.downs)
	}
}

// TestLowerParallelism: a cell whose timers fired later than MaxLateness
// lowers the parallelism by one; cells that ran alongside it do not lower
// it again.
func TestLowerParallelism(t *testing.T) {
	dir := t.TempDir()
	f := folderFor(t, dir, "scenarios: [power-off]\nrepetitions: 12\n")
	defer f.Close()
	// The first four cells run at once (each waits for the others) and
	// are starved; later ones are not.
	var arrived sync.WaitGroup
	arrived.Add(4)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	b := newFake(func(_ context.Context, c Cell, call int) (*scenario.Result, error) {
		late := 0.01
		if call <= 4 {
			late = 0.9
			arrived.Done()
			select {
			case <-all:
			case <-time.After(5 * time.Second):
				return nil, errors.New("the first four cells did not run at once")
			}
		}
		r := expected(15, 14.3)
		r.Lateness = &scenario.Lateness{Timers: 6, MaxS: late}
		return r, nil
	})
	var progress bytes.Buffer
	oc, err := Run(context.Background(), f, b, RunOptions{Parallel: 4, LabPrefix: "t-", Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if oc.Parallel != 4 || oc.FinalParallel != 3 || len(oc.Lowered) != 1 {
		t.Errorf("parallel %d → %d, lowered %q; want 4 → 3 once (cells run alongside the first starved one say nothing new)\n%s",
			oc.Parallel, oc.FinalParallel, oc.Lowered, progress.String())
	}
	if !strings.Contains(progress.String(), "lowering the parallelism to 3") || !strings.Contains(progress.String(), "warning") {
		t.Errorf("progress:\n%s", progress.String())
	}
	// Never when disabled.
	g := folderFor(t, t.TempDir(), "scenarios: [power-off]\nrepetitions: 6\n")
	defer g.Close()
	oc, err = Run(context.Background(), g, b, RunOptions{Parallel: 2, LabPrefix: "u-", MaxLateness: -1})
	if err != nil || oc.FinalParallel != 2 {
		t.Errorf("MaxLateness < 0: %+v %v", oc, err)
	}
}

func TestCheckLatenessRules(t *testing.T) {
	r := &runner{opt: RunOptions{MaxLateness: DefaultMaxLateness, Progress: &bytes.Buffer{}}, limit: 3, f: &Folder{Plan: &Plan{}}}
	rec := func(v model.Verdict, late float64) Record {
		return Record{ID: "x", StarvationS: &late, Result: scenario.Result{Verdict: v, Lateness: &scenario.Lateness{Timers: 3, MaxS: late}}}
	}
	for _, l := range []float64{0.01, 0.02, 0.03} { // the baseline: median 0.02
		r.checkLateness(runningCell{}, rec(model.Expected, l))
	}
	r.checkLateness(runningCell{}, rec(model.Unexpected, 0.08)) // above 3× median but under the 0.1 s floor
	if r.limit != 3 {
		t.Errorf("lowered on an unexpected verdict under the floor")
	}
	r.checkLateness(runningCell{}, rec(model.Expected, 0.15)) // expected, under 0.2 s
	if r.limit != 3 {
		t.Errorf("lowered on an expected verdict under MaxLateness")
	}
	r.checkLateness(runningCell{}, rec(model.Unexpected, 0.15))
	if r.limit != 2 {
		t.Errorf("not lowered on an unexpected verdict with starvation 7.5× the baseline")
	}
	r.checkLateness(runningCell{epoch: 1}, rec(model.Expected, 0.6))
	if r.limit != 1 {
		t.Errorf("not lowered above MaxLateness")
	}
	r.checkLateness(runningCell{epoch: 2}, rec(model.Expected, 2))
	if r.limit != 1 {
		t.Errorf("lowered below one lab")
	}
}

// TestCheckExit: --check's exit status from the cells, as run --check.
func TestCheckExit(t *testing.T) {
	spec, err := load(t, t.TempDir(), "scenarios: [power-off]\nvariants:\n  - {idle: true}\n  - {user-timeout: 6s}\nrepetitions: 2\nbudget: 10s\n")
	if err != nil {
		t.Fatal(err)
	}
	plan := Expand(spec, "", LabSettings{})
	b := 10.0
	rec := func(i int, v model.Verdict, errName string, d float64) Record {
		c := plan.Cells[i]
		res := scenario.Result{Verdict: v, Complete: true, Observed: scenario.Observed{Error: errName}}
		if errName != "" {
			res.Observed.DetectS = &d
		}
		m := meetsBudget(&res, b)
		return Record{ID: c.ID, Scenario: c.Scenario, Kernel: c.Kernel, KernelRelease: c.KernelRelease, VariantName: c.VariantName, BudgetS: &b, MeetsBudget: &m, Result: res}
	}
	idle0, ut0, idle1, ut1 := 0, 1, 2, 3
	for _, tt := range []struct {
		name string
		recs []Record
		want int
	}{
		{"all expected, within budget", []Record{rec(ut0, model.Expected, "ETIMEDOUT", 7.5), rec(ut1, model.Expected, "ETIMEDOUT", 7.6)}, 0},
		{"unknown", []Record{rec(ut0, model.Expected, "ETIMEDOUT", 7.5), rec(ut1, model.Unknown, "ETIMEDOUT", 7.6)}, ExitUnknown},
		{"unexpected", []Record{rec(ut0, model.Unexpected, "ETIMEDOUT", 7.5), rec(ut1, model.Unknown, "ETIMEDOUT", 7.6)}, ExitMissOrUnexpected},
		{"learnt nothing misses", []Record{rec(idle0, model.Expected, "", 0), rec(ut0, model.Unknown, "ETIMEDOUT", 7.5)}, ExitMissOrUnexpected},
		{"too late misses", []Record{rec(idle1, model.Expected, "ETIMEDOUT", 12.5)}, ExitMissOrUnexpected},
		{"nothing finished", nil, 0},
	} {
		done := map[string]Record{}
		for _, r := range tt.recs {
			done[r.ID] = r
		}
		if got := Summarize(plan, done).Check; got != tt.want {
			t.Errorf("%s: check %d; want %d", tt.name, got, tt.want)
		}
	}
	done := map[string]Record{}
	for _, r := range []Record{rec(ut0, model.Expected, "ETIMEDOUT", 7.5), rec(ut1, model.Expected, "ETIMEDOUT", 9.4), rec(idle0, model.Expected, "", 0)} {
		done[r.ID] = r
	}
	s := Summarize(plan, done)
	var text []string
	for _, a := range s.Answers {
		text = append(text, a.Text)
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{"power-off --user-timeout 6s detects within 10 s on 6.1.0-57-amd64: yes, worst 9.4 s",
		"power-off --idle detects within 10 s on 6.1.0-57-amd64: no, 1 of 1 cells missed (the client learnt nothing in 1) [1 of 2 cells finished]"} {
		if !strings.Contains(all, want) {
			t.Errorf("answers lack %q:\n%s", want, all)
		}
	}
	var out bytes.Buffer
	if err := s.Write(&out); err != nil || !strings.Contains(out.String(), "SCENARIO") {
		t.Errorf("summary table: %v\n%s", err, out.String())
	}
}

func TestMeetsBudget(t *testing.T) {
	d := 10.0
	for _, tt := range []struct {
		res  scenario.Result
		want bool
	}{
		{scenario.Result{Observed: scenario.Observed{Error: "ETIMEDOUT", DetectS: &d}}, true},
		{scenario.Result{Observed: scenario.Observed{Error: "ETIMEDOUT", DetectS: &d}}, true},
		{scenario.Result{Observed: scenario.Observed{Error: ""}}, false},
		{scenario.Result{Observed: scenario.Observed{Error: "EOF"}}, false},
	} {
		if got := meetsBudget(&tt.res, 10); got != tt.want {
			t.Errorf("meetsBudget(%+v) = %v", tt.res.Observed, got)
		}
	}
	late := 10.001
	if meetsBudget(&scenario.Result{Observed: scenario.Observed{Error: "ETIMEDOUT", DetectS: &late}}, 10) {
		t.Error("10.001 s meets a 10 s budget")
	}
}

// TestETA: before a variant has run, the model's prior (tcp_retries2=15:
// 924.6 s; retries2=5: 12.6 s; keepalive 4s,2s,3: 10 s); after, the mean
// prediction of its finished cells and their measured overhead.
func TestETA(t *testing.T) {
	spec, err := load(t, t.TempDir(), `scenarios: [power-off]
variants:
  - {}
  - {sysctl: ["client:net.ipv4.tcp_retries2=5"]}
  - {idle: true, keepalive: "4s,2s,3"}
  - {user-timeout: 6s}
  - {idle: true}
`)
	if err != nil {
		t.Fatal(err)
	}
	plan := Expand(spec, "", LabSettings{})
	wants := []time.Duration{924600 * time.Millisecond, 12600 * time.Millisecond, 10 * time.Second, 6 * time.Second, time.Minute}
	for i, want := range wants {
		if got := priorDetect(plan.Cells[i]); got != want {
			t.Errorf("prior of %s = %v; want %v", plan.Cells[i].VariantName, got, want)
		}
	}
	e := newEstimator()
	if got := e.cell(plan.Cells[1]); got != 12600*time.Millisecond+PriorOverhead {
		t.Errorf("cell estimate before anything ran: %v", got)
	}
	e.add(plan.Cells[1], Record{TookS: 40, Result: *expected(15, 14.3)})
	e.add(plan.Cells[1], Record{TookS: 44, Result: *expected(15, 14.7)})
	// Detection 14.5 s (mean prediction), overhead 27 s (mean of 25 and 29).
	if got := e.cell(plan.Cells[1]); got != 41500*time.Millisecond {
		t.Errorf("cell estimate after two cells: %v; want 41.5s", got)
	}
	todo := []Cell{plan.Cells[1], plan.Cells[1], plan.Cells[3], plan.Cells[3]}
	up := map[labKind]bool{plan.Cells[1].kind(): true}
	one := e.eta(todo, nil, 1, up)
	two := e.eta(todo, nil, 2, up)
	if one != 2*41500*time.Millisecond+2*(6+27)*time.Second || two != one/2 {
		t.Errorf("eta %v at 1 lab, %v at 2", one, two)
	}
	running := map[string]runningCell{"x": {cell: plan.Cells[1], start: time.Now().Add(-time.Hour)}}
	if got := e.eta(nil, running, 1, up); got != 0 {
		t.Errorf("a cell running past its estimate adds %v", got)
	}
	if got := e.eta(todo[:1], nil, 1, nil); got != 41500*time.Millisecond+priorLabUp {
		t.Errorf("eta with a lab to bring up %v", got)
	}
}

// TestStarvation: lateness within a timer's wheel granule is the kernel's
// rounding, not starvation.
func TestStarvation(t *testing.T) {
	ms := time.Millisecond
	ladder := &scenario.Ladder{Base: 212 * ms, Rungs: []scenario.Rung{
		{Armed: 424 * ms}, {Armed: 6784 * ms}, {Armed: 27136 * ms}},
		Late: []time.Duration{4 * ms, 30 * ms, 255 * ms, 1792 * ms}}
	ladder.Rungs = append(ladder.Rungs, scenario.Rung{Armed: 54272 * ms})
	res := &scenario.Result{Lateness: &scenario.Lateness{Timers: 4, MaxS: 1.792}, WireLadder: ladder}
	// The 1.792 s after a 27.1 s RTO is within its 2.048 s granule, the
	// 255 ms after 6.8 s within 256 ms, the 30 ms after 424 ms within
	// 32 ms: nothing is starvation.
	if s, ok := starvation(Cell{}, res); !ok || s != 0 {
		t.Errorf("starvation = %v, %v; want 0 (all within granules)", s, ok)
	}
	ladder.Late[2] = 756 * ms // 0.5 s beyond the 256 ms granule of a 6.8 s RTO
	if s, _ := starvation(Cell{}, res); s < 0.499 || s > 0.501 {
		t.Errorf("starvation = %v; want 0.5", s)
	}
	// Keepalive probes: the granule of the longest keepalive timer.
	ka := Cell{opt: scenario.Options{Keepalive: "5s,2s,3"}}
	res = &scenario.Result{Lateness: &scenario.Lateness{Timers: 3, MaxS: 0.3}}
	if s, _ := starvation(ka, res); s < 0.043 || s > 0.045 {
		t.Errorf("keepalive starvation = %v; want 0.3 − 0.256", s)
	}
	if _, ok := starvation(ka, &scenario.Result{}); ok {
		t.Error("starvation without measured timers")
	}
}
