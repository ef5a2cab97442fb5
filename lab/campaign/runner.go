package campaign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/scenario"
)

// Backend brings labs up and down and runs cells in them: real VMs
// (VMBackend), or a fake in tests.
type Backend interface {
	// Up brings up lab name with kernel k, with a router when routed.
	Up(ctx context.Context, name string, k Kernel, routed bool) (Lab, error)
	// Execute runs cell c in lab l, its run folder created under out, its
	// progress logged to log; an error means the run could not be carried
	// out (as scenario.Execute).
	Execute(ctx context.Context, l Lab, c Cell, out string, log *slog.Logger) (*scenario.Result, error)
	// Down takes lab name down; a lab already gone is not an error.
	Down(ctx context.Context, name string) error
}

// Lab is a lab a Backend brought up.
type Lab interface {
	Name() string
	// KernelRelease is the release its guests run.
	KernelRelease() string
	// Close releases the handle; the lab stays up.
	Close()
}

// DefaultMaxLateness is the starvation — timer lateness beyond the timer
// wheel's granule — above which the campaign lowers its parallelism: on a
// 2-core TCG host it stays under 0.05 s with four labs when the host is
// otherwise quiet, and reaches 0.2–0.3 s when the host is saturated.
const DefaultMaxLateness = 200 * time.Millisecond

// MaxParallel is the most labs a campaign runs at once.
const MaxParallel = 8

// RunOptions configure Run.
type RunOptions struct {
	// Parallel is how many labs run cells at once (each bound to one
	// kernel).
	Parallel int
	// LabPrefix starts the name of every lab the campaign brings up.
	LabPrefix string
	// MaxLateness is the starvation (timer lateness beyond the wheel's
	// granule, Record.StarvationS) above which a cell lowers the
	// parallelism: DefaultMaxLateness when 0, never when negative.
	MaxLateness time.Duration
	// Log receives each cell's own progress, as hostlab run shows it, with
	// the cell's id; nil discards it.
	Log *slog.Logger
	// Progress receives the campaign's progress lines; nil discards them.
	Progress io.Writer
	// Heartbeat is how often a status line lists the running cells (1 min
	// when 0).
	Heartbeat time.Duration
	// OnRecord, when set, is called after a cell's line is durable.
	OnRecord func(Record)
}

// Outcome is what one Run did.
type Outcome struct {
	// Ran are the cells this run finished.
	Ran int
	// Left are the cells still missing when it stopped, with why.
	Left map[string]string
	// Wall is the run's duration; DetectS the sum of the detections of
	// the cells it finished and TookS of their wall times.
	Wall    time.Duration
	DetectS float64
	TookS   float64
	// LabUps are the bring-up times of the labs it brought up, seconds.
	LabUps []float64
	// Parallel is the parallelism it started and ended with.
	Parallel, FinalParallel int
	// Lowered lists each lowering of the parallelism, with its reason.
	Lowered []string
}

// OverheadPerCell is the run's wall time minus the detections of the
// cells it finished, divided by their number.
func (o *Outcome) OverheadPerCell() time.Duration {
	if o.Ran == 0 {
		return 0
	}
	return time.Duration((o.Wall.Seconds() - o.DetectS) / float64(o.Ran) * float64(time.Second))
}

// InLabOverhead is the mean time a finished cell took besides its
// detection, in a lab already up.
func (o *Outcome) InLabOverhead() time.Duration {
	if o.Ran == 0 {
		return 0
	}
	return time.Duration((o.TookS - o.DetectS) / float64(o.Ran) * float64(time.Second))
}

// runningCell is a cell being run.
type runningCell struct {
	cell   Cell
	start  time.Time
	lab    string
	worker int
	// epoch is the number of lowerings before the cell started.
	epoch int
}

// runner runs the missing cells of a folder.
type runner struct {
	f   *Folder
	b   Backend
	opt RunOptions

	mu       sync.Mutex
	pending  []Cell
	attempts map[string]int
	left     map[string]string
	running  map[string]runningCell
	current  map[int]labKind // each worker's lab
	held     map[string]bool // labs up, for labs.json
	labFails map[labKind]int
	limit    int
	epoch    int
	lowered  []string
	baseline []float64 // lateness of the first measured cells
	est      *estimator
	ran      int
	detectS  float64
	tookS    float64
	labUps   []float64
	fatal    error
}

// Run runs the cells of f not yet finished, opt.Parallel labs at once, and
// appends each finished cell to results.jsonl. Labs an earlier, killed
// runner left up (labs.json) are taken down first; the labs it brings up
// are taken down at the end, also on failure and when ctx ends. A cell
// whose run fails is tried once more on a fresh lab in the same Run, then
// left for a resume; a cell interrupted by ctx is left for a resume. An
// interrupted Run returns ctx's error with the outcome.
func Run(ctx context.Context, f *Folder, b Backend, opt RunOptions) (*Outcome, error) {
	if opt.Parallel < 1 {
		opt.Parallel = 1
	}
	if opt.MaxLateness == 0 {
		opt.MaxLateness = DefaultMaxLateness
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	if opt.Heartbeat == 0 {
		opt.Heartbeat = time.Minute
	}
	r := &runner{f: f, b: b, opt: opt, attempts: map[string]int{}, left: map[string]string{},
		running: map[string]runningCell{}, current: map[int]labKind{}, held: map[string]bool{},
		labFails: map[labKind]int{}, est: newEstimator()}
	done := f.Finished()
	for _, c := range f.Plan.Cells {
		if rec, ok := done[c.ID]; ok {
			r.est.add(c, rec)
		} else {
			r.pending = append(r.pending, c)
		}
	}
	parallel := min(opt.Parallel, max(1, len(r.pending)))
	r.limit = parallel
	out := &Outcome{Parallel: parallel, Left: map[string]string{}}
	t0 := time.Now()
	r.cleanLeftovers()
	if len(r.pending) == 0 {
		r.progress("campaign: all %d cells are finished", len(f.Plan.Cells))
		out.FinalParallel = parallel
		return out, nil
	}
	r.progress("campaign: %d cells, %d finished, %d to run, %d lab(s) at a time; ETA %s; folder %s",
		len(f.Plan.Cells), len(done), len(r.pending), parallel, r.etaLocked().Round(time.Minute), f.Dir)

	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go r.heartbeat(hbCtx)
	eg, ectx := errgroup.WithContext(ctx)
	for w := 1; w <= parallel; w++ {
		eg.Go(func() error { return r.worker(ectx, w) })
	}
	werr := eg.Wait()
	stopHB()
	r.downAll()

	r.mu.Lock()
	defer r.mu.Unlock()
	out.Ran, out.DetectS, out.TookS, out.LabUps, out.Wall = r.ran, r.detectS, r.tookS, r.labUps, time.Since(t0)
	out.FinalParallel, out.Lowered = r.limit, r.lowered
	for id, why := range r.left {
		out.Left[id] = why
	}
	for _, c := range r.pending {
		if _, ok := out.Left[c.ID]; !ok {
			out.Left[c.ID] = "not run"
		}
	}
	for id := range r.running {
		out.Left[id] = "interrupted"
	}
	switch {
	case werr != nil:
		return out, werr
	case r.fatal != nil:
		return out, r.fatal
	case ctx.Err() != nil:
		return out, fmt.Errorf("campaign interrupted with %d of %d cells finished; continue with `hostlab campaign resume %s`: %w",
			len(f.Plan.Cells)-len(out.Left), len(f.Plan.Cells), f.Dir, ctx.Err())
	}
	return out, nil
}

// cleanLeftovers takes down the labs an earlier runner of this folder
// recorded as held: after a kill -9 they are still up.
func (r *runner) cleanLeftovers() {
	var still []string
	for _, name := range r.f.Labs() {
		r.progress("lab %s: left up by an interrupted run of this campaign; taking it down", name)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		if err := r.b.Down(ctx, name); err != nil {
			r.progress("lab %s: take down: %v", name, err)
			still = append(still, name) // still ours: tried again at the end
			r.held[name] = true
		}
		cancel()
	}
	_ = r.f.SetLabs(still)
}

// labName names worker w's lab for kind k: PREFIXk1-w, or PREFIXk1r-w
// with a router.
func (r *runner) labName(w int, k labKind) string {
	tag := ""
	if k.routed {
		tag = "r"
	}
	return fmt.Sprintf("%sk%d%s-%d", r.opt.LabPrefix, k.kernel+1, tag, w)
}

// worker runs cells one at a time in its lab, bringing up a lab of the
// kind a cell needs when its own is of another kind.
func (r *runner) worker(ctx context.Context, w int) error {
	var cur Lab
	var curKind labKind
	defer func() {
		if cur != nil {
			r.retire(w, cur)
		}
	}()
	for {
		var have *labKind
		if cur != nil {
			have = &curKind
		}
		c, ok := r.next(ctx, w, have)
		if !ok {
			return nil
		}
		if cur == nil || c.kind() != curKind {
			if cur != nil {
				r.retire(w, cur)
				cur = nil
			}
			l, err := r.bringUp(ctx, w, c)
			if err != nil {
				if errors.Is(err, lab.ErrLabExists) {
					return err
				}
				continue
			}
			cur, curKind = l, c.kind()
		}
		ok, err := r.runCell(ctx, w, cur, c)
		if err != nil {
			return err
		}
		if !ok && ctx.Err() == nil {
			// A failed run may leave its lab broken: the next cell gets a
			// fresh one.
			r.retire(w, cur)
			cur = nil
			r.mu.Lock()
			delete(r.current, w)
			r.mu.Unlock()
		}
	}
}

// next hands worker w its next cell and marks it running: a cell its lab
// (of kind have, when it has one) can run, else a cell of the kind with the
// most work left per lab — if a new lab for it pays: a kind no lab runs
// yet, or one whose remaining work W on n labs ends sooner on n+1 even
// after a bring-up (W/(n+1) + bring-up < W/n). It reports false when
// nothing is left for w: no cell worth a lab, ctx done, or w above the
// parallelism.
func (r *runner) next(ctx context.Context, w int, have *labKind) (Cell, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Err() != nil || w > r.limit || len(r.pending) == 0 {
		delete(r.current, w)
		return Cell{}, false
	}
	idx := -1
	if have != nil {
		idx = slices.IndexFunc(r.pending, func(c Cell) bool { return c.kind() == *have })
	}
	if idx < 0 {
		work := map[labKind]time.Duration{}
		for _, c := range r.pending {
			work[c.kind()] += r.est.cell(c)
		}
		on := map[labKind]int{}
		for ow, k := range r.current {
			if ow != w {
				on[k]++
			}
		}
		best := time.Duration(-1)
		for i, c := range r.pending {
			k := c.kind()
			n := time.Duration(on[k])
			if n > 0 && work[k]/(n+1)+priorLabUp >= work[k]/n {
				continue // another lab would not finish this kind sooner
			}
			if per := work[k] / (n + 1); per > best {
				best, idx = per, i
			}
		}
		if idx < 0 {
			delete(r.current, w)
			return Cell{}, false
		}
	}
	c := r.pending[idx]
	r.pending = slices.Delete(r.pending, idx, idx+1)
	r.running[c.ID] = runningCell{cell: c, start: time.Now(), worker: w, epoch: r.epoch}
	r.current[w] = c.kind() // the lab w has, or is about to bring up
	return c, true
}

// bringUp brings up worker w's lab for cell c's kind. On failure the cell
// goes back to the queue; after a kind's second failure its cells are left
// for a resume.
func (r *runner) bringUp(ctx context.Context, w int, c Cell) (Lab, error) {
	k := c.kind()
	name := r.labName(w, k)
	kern := r.f.Plan.Kernels[k.kernel]
	what := "lab"
	if k.routed {
		what = "routed lab"
	}
	r.mu.Lock()
	r.held[name] = true
	r.saveLabsLocked()
	if rc, ok := r.running[c.ID]; ok {
		rc.lab = name + " coming up"
		r.running[c.ID] = rc
	}
	r.mu.Unlock()
	r.progress("%s %s: bringing it up (kernel %s)", what, name, kern.Release)
	t0 := time.Now()
	l, err := r.b.Up(ctx, name, kern, k.routed)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, c.ID)
	if err != nil {
		delete(r.current, w)
		if !errors.Is(err, lab.ErrLabExists) {
			delete(r.held, name) // Up removes what it created
		} else {
			delete(r.held, name) // not ours: never taken down
			err = fmt.Errorf("%w: it is not this campaign's; take it down, or give another lab prefix", err)
		}
		r.saveLabsLocked()
		r.pending = slices.Insert(r.pending, 0, c)
		if ctx.Err() != nil || errors.Is(err, lab.ErrLabExists) {
			return nil, err
		}
		r.labFails[k]++
		r.progressLocked("%s %s: %v", what, name, err)
		if r.labFails[k] >= 2 {
			var keep []Cell
			for _, p := range r.pending {
				if p.kind() == k {
					r.left[p.ID] = fmt.Sprintf("its %s for kernel %s could not be brought up: %v", what, kern.Release, err)
				} else {
					keep = append(keep, p)
				}
			}
			r.pending = keep
			r.progressLocked("%s for kernel %s failed twice: its cells are left for a resume", what, kern.Release)
		}
		return nil, err
	}
	r.labUps = append(r.labUps, time.Since(t0).Seconds())
	r.running[c.ID] = runningCell{cell: c, start: time.Now(), worker: w, epoch: r.epoch, lab: name}
	r.progressLocked("%s %s: up in %s (kernel %s)", what, name, time.Since(t0).Round(100*time.Millisecond), l.KernelRelease())
	return l, nil
}

// retire closes worker w's lab and takes it down.
func (r *runner) retire(w int, l Lab) {
	name := l.Name()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := r.b.Down(ctx, name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.progressLocked("lab %s: take down: %v", name, err)
		return
	}
	delete(r.held, name)
	r.saveLabsLocked()
	r.progressLocked("lab %s: down", name)
}

// downAll takes down every lab still held (a worker that returned early).
func (r *runner) downAll() {
	r.mu.Lock()
	names := make([]string, 0, len(r.held))
	for n := range r.held {
		names = append(names, n)
	}
	r.mu.Unlock()
	for _, n := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		if err := r.b.Down(ctx, n); err == nil {
			r.mu.Lock()
			delete(r.held, n)
			r.saveLabsLocked()
			r.mu.Unlock()
		}
		cancel()
	}
}

func (r *runner) saveLabsLocked() {
	names := make([]string, 0, len(r.held))
	for n := range r.held {
		names = append(names, n)
	}
	if err := r.f.SetLabs(names); err != nil {
		r.progressLocked("labs.json: %v", err)
	}
}

// runCell runs c in l and records it. It reports whether the run was
// carried out; an error stops the campaign (results cannot be written).
func (r *runner) runCell(ctx context.Context, w int, l Lab, c Cell) (bool, error) {
	out := r.f.RunsDir(c.ID)
	if err := freshSecond(ctx, out, c.Scenario); err != nil {
		r.mu.Lock()
		delete(r.running, c.ID)
		r.left[c.ID] = "interrupted"
		r.mu.Unlock()
		return false, nil
	}
	r.mu.Lock()
	rc := r.running[c.ID]
	rc.start, rc.lab = time.Now(), l.Name()
	r.running[c.ID] = rc
	labs := len(r.running)
	r.progressLocked("[%d/%d] start  %s  %s %s on %s (rep %d, lab %s)", r.finishedLocked(), len(r.f.Plan.Cells), c.ID, c.Scenario, c.VariantName, l.KernelRelease(), c.Rep, l.Name())
	r.mu.Unlock()

	res, err := r.b.Execute(ctx, l, c, out, r.opt.Log.With("cell", c.ID))
	took := time.Since(rc.start)
	if err == nil && res == nil {
		err = errors.New("the run gave no result")
	}
	if err != nil {
		return false, r.failed(ctx, c, l, res, err, took)
	}
	rec := r.record(c, l, res, took, labs)
	if err := r.f.Append(rec); err != nil {
		r.mu.Lock()
		delete(r.running, c.ID)
		r.left[c.ID] = err.Error()
		r.fatal = err
		r.mu.Unlock()
		return false, err
	}
	if r.opt.OnRecord != nil {
		r.opt.OnRecord(rec)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, c.ID)
	r.ran++
	r.detectS += detectOf(rec)
	r.tookS += rec.TookS
	r.est.add(c, rec)
	r.progressLocked("[%d/%d] done   %s  %s; %s left, ETA %s at %d lab(s)", r.finishedLocked(), len(r.f.Plan.Cells), c.ID,
		cellLine(rec, took), plural(len(r.pending)+len(r.running), "cell"), r.etaLocked().Round(time.Second), r.limit)
	r.checkLateness(rc, rec)
	return true, nil
}

// failed handles a run that could not be carried out: interrupted by ctx,
// it is left for a resume; otherwise noted in failures.jsonl and tried once
// more (on a fresh lab), then left for a resume.
func (r *runner) failed(ctx context.Context, c Cell, l Lab, res *scenario.Result, err error, took time.Duration) error {
	runDir := ""
	if res != nil {
		runDir = res.RunDir
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, c.ID)
	if ctx.Err() != nil {
		r.left[c.ID] = "interrupted"
		r.progressLocked("interrupted  %s after %s: it runs again on resume (partial evidence in %s)", c.ID, took.Round(time.Second), orDash(runDir))
		return nil
	}
	r.attempts[c.ID]++
	a := r.attempts[c.ID]
	if ferr := r.f.AppendFailure(Failure{ID: c.ID, At: time.Now().UTC(), Lab: l.Name(), Error: err.Error(), RunDir: runDir, Attempt: a}); ferr != nil {
		r.progressLocked("failures.jsonl: %v", ferr)
	}
	if a < 2 {
		r.pending = slices.Insert(r.pending, 0, c)
		r.progressLocked("failed %s after %s: %v; trying it again on a fresh lab", c.ID, took.Round(time.Second), err)
		return nil
	}
	r.left[c.ID] = "failed twice: " + err.Error()
	r.progressLocked("failed %s again: %v; left for a resume", c.ID, err)
	return nil
}

// record makes a finished cell's line.
func (r *runner) record(c Cell, l Lab, res *scenario.Result, took time.Duration, labs int) Record {
	rec := Record{ID: c.ID, Scenario: c.Scenario, Kernel: c.Kernel, KernelRelease: l.KernelRelease(),
		Variant: c.Variant, VariantName: c.VariantName, Rep: c.Rep, BudgetS: r.f.Plan.BudgetS,
		Lab: l.Name(), LabsRunning: labs, TookS: took.Seconds(), Result: *res}
	if rec.KernelRelease == "" {
		rec.KernelRelease = c.KernelRelease
	}
	if b := r.f.Plan.BudgetS; b != nil {
		m := meetsBudget(res, *b)
		rec.MeetsBudget = &m
	}
	if s, ok := starvation(c, res); ok {
		rec.StarvationS = &s
	}
	return rec
}

// meetsBudget says whether the client detected the fault within budget
// seconds: a client that learnt nothing misses it.
func meetsBudget(res *scenario.Result, budget float64) bool {
	d := res.Observed.DetectS
	return res.Observed.Error != "" && d != nil && *d <= budget
}

// Reasons to lower the parallelism.
const (
	// baselineCells is how many first measurements make the lateness
	// baseline.
	baselineCells = 5
	// unexpectedFactor and unexpectedFloor: an unexpected verdict lowers
	// the parallelism when its lateness exceeds the baseline's median
	// times the factor and the floor.
	unexpectedFactor = 3
	unexpectedFloor  = 0.1
)

// checkLateness lowers the parallelism by one lab when a finished cell's
// guest was starved: its timers fired later than MaxLateness beyond their
// timer-wheel granule (starvation), or its verdict is unexpected with a
// starvation above three times the median of the run's first measured cells
// (and 0.1 s). Only a cell that started after the last lowering can lower it
// again: cells that ran alongside the starved one say nothing new.
func (r *runner) checkLateness(rc runningCell, rec Record) {
	if rec.StarvationS == nil {
		return
	}
	late := *rec.StarvationS
	reason := ""
	switch {
	case r.opt.MaxLateness > 0 && late > r.opt.MaxLateness.Seconds():
		reason = fmt.Sprintf("timers fired %.3f s late beyond their wheel granule, above %.3f s", late, r.opt.MaxLateness.Seconds())
	case r.opt.MaxLateness > 0 && rec.Verdict == model.Unexpected && len(r.baseline) >= 3 &&
		late > max(unexpectedFactor*median(r.baseline), unexpectedFloor):
		reason = fmt.Sprintf("unexpected verdict with timers %.3f s late beyond their granule, over %d× the first cells' median %.3f s", late, unexpectedFactor, median(r.baseline))
	}
	if len(r.baseline) < baselineCells {
		r.baseline = append(r.baseline, late)
	}
	if reason == "" {
		return
	}
	r.progressLocked("warning: %s: %s — its guest was starved of CPU, detection times are stretched", rec.ID, reason)
	switch {
	case rc.epoch != r.epoch:
		r.progressLocked("  (it started before the last lowering: not lowering again)")
	case r.limit <= 1:
		r.progressLocked("  (already one lab at a time)")
	default:
		r.limit--
		r.epoch++
		msg := fmt.Sprintf("after %s: %s; %d lab(s) at a time from now on", rec.ID, reason, r.limit)
		r.lowered = append(r.lowered, msg)
		r.progressLocked("lowering the parallelism to %d lab(s) for the %s still to run", r.limit, plural(len(r.pending), "cell"))
	}
}

// heartbeat prints a status line every opt.Heartbeat.
func (r *runner) heartbeat(ctx context.Context) {
	t := time.NewTicker(r.opt.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		var parts []string
		for _, rc := range r.running {
			parts = append(parts, fmt.Sprintf("%s (lab %s, %s)", rc.cell.ID, orDash(rc.lab), time.Since(rc.start).Round(time.Second)))
		}
		slices.Sort(parts)
		r.progressLocked("campaign: %d/%d finished, running %s; ETA %s at %d lab(s)", r.finishedLocked(), len(r.f.Plan.Cells),
			orDash(strings.Join(parts, ", ")), r.etaLocked().Round(time.Second), r.limit)
		r.mu.Unlock()
	}
}

// finishedLocked counts the campaign's finished cells.
func (r *runner) finishedLocked() int {
	return len(r.f.Plan.Cells) - len(r.pending) - len(r.running) - len(r.left)
}

// etaLocked estimates the time left (estimator.eta).
func (r *runner) etaLocked() time.Duration {
	up := map[labKind]bool{}
	for _, k := range r.current {
		up[k] = true
	}
	return r.est.eta(r.pending, r.running, r.limit, up)
}

func (r *runner) progress(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progressLocked(format, args...)
}

func (r *runner) progressLocked(format string, args ...any) {
	fmt.Fprintf(r.opt.Progress, format+"\n", args...)
}

// freshSecond waits, if needed, until no run folder of scenario under out
// is named after the current second: scenario.Execute names run folders
// TIMESTAMP-SCENARIO to the second, and a run must never reuse an earlier
// attempt's folder.
func freshSecond(ctx context.Context, out, scen string) error {
	for {
		name := time.Now().UTC().Format("20060102T150405Z") + "-" + scen
		if _, err := os.Stat(filepath.Join(out, name)); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cellLine says in a few words how a cell ended.
func cellLine(rec Record, took time.Duration) string {
	s := rec.Verdict.String() + ", " + orNothing(rec.Observed.Error)
	if d := rec.Observed.DetectS; d != nil {
		s += fmt.Sprintf(" at %.3f s", *d)
	}
	if p := rec.PredictedS; p != nil {
		s += fmt.Sprintf(" (predicted %.3f s)", *p)
	}
	if rec.MeetsBudget != nil && rec.BudgetS != nil {
		word := "meets"
		if !*rec.MeetsBudget {
			word = "misses"
		}
		s += fmt.Sprintf(", %s the %s budget", word, fmtS(*rec.BudgetS))
	}
	if l := rec.Lateness; l != nil && l.Timers > 0 {
		s += fmt.Sprintf(", timers late by ≤%.3f s", l.MaxS)
		if st := rec.StarvationS; st != nil {
			s += fmt.Sprintf(" (%.3f s beyond their granule)", *st)
		}
	}
	return s + fmt.Sprintf(", in %s; %s", took.Round(time.Second), rec.RunDir)
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// fmtS writes seconds briefly: 20 s, 10.4 s, 0.96 s.
func fmtS(s float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", s), "0"), ".") + " s"
}
