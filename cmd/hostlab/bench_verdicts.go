package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/scenario"
)

// verdictExtras are the variants the verdicts bench runs besides each
// scenario's defaults, as hostlab run's flags.
var verdictExtras = map[string][]string{
	"kill-server":  {"--read event"},
	"sigpipe":      {"--sigpipe-ignore"},
	"power-off":    {"--idle --keepalive 3s,1s,3", "--user-timeout 6s"},
	"shutdown":     {"--server-sigterm ignore"},
	"connect-dead": {"--target no-listener", "--neigh cold"},
	"hang-server":  {"--user-timeout 5s"},
}

// shortRetries are the scenarios whose client waits for a dead host: with
// tcp_retries2=5 it gives up after about 15 s instead of about 16 minutes.
var shortRetries = []string{"power-off", "unreachable"}

// benchLabSysctls are the boot sysctls of every bench lab: the short
// retries hold in every run, whatever ran in the lab before.
var benchLabSysctls = map[string][]string{lab.RoleClient: {"net.ipv4.tcp_retries2=5"}}

// shortSettings are run flags that keep a scenario's runs short: the
// client's tcp_retries2=5 where it waits for a dead host, and, behind a
// router, the router's short neighbour timers (its entry for the dead
// server fails within seconds, so its ICMP host unreachable comes before
// the abort).
func shortSettings(s scenario.Scenario) []string {
	var args []string
	switch {
	case s.Name == "crash-reboot":
		// Long enough for a server that takes a while to reboot on a loaded
		// host (bound 102.2 s): the run is about the RST, not the abort.
		args = append(args, "--sysctl", "client:net.ipv4.tcp_retries2=8")
	case slices.Contains(shortRetries, s.Name):
		args = append(args, "--sysctl", "client:net.ipv4.tcp_retries2=5")
	}
	if s.Name == "connect-dead" {
		// Two SYN retries: ETIMEDOUT after 7 s instead of 127 s.
		args = append(args, "--sysctl", "client:net.ipv4.tcp_syn_retries=2")
	}
	if s.Routed {
		args = append(args,
			"--sysctl", "router:net.ipv4.neigh.eth1.base_reachable_time_ms=1000",
			"--sysctl", "router:net.ipv4.neigh.eth1.delay_first_probe_time=1")
	}
	return args
}

// verdictVariant is one row of the verdicts bench: a scenario with
// hostlab run's flags.
type verdictVariant struct {
	// Label is the scenario and the variant's own flags, e.g.
	// "power-off --user-timeout 6s".
	Label string
	// Scenario is the scenario run.
	Scenario scenario.Scenario
	// Args are hostlab run's flags for each run, short settings included.
	Args []string
	// Opt are the options Args parse into.
	Opt scenario.Options
}

// verdictVariants lists the variants of the named scenarios (every one in
// the catalogue when names is empty), in catalogue order: each scenario
// with its defaults, then its extras.
func verdictVariants(names []string) ([]verdictVariant, error) {
	for _, n := range names {
		if _, err := scenario.Lookup(n); err != nil {
			return nil, fmt.Errorf("--scenarios: %w", err)
		}
	}
	var vs []verdictVariant
	for _, s := range scenario.Catalogue {
		if len(names) > 0 && !slices.Contains(names, s.Name) {
			continue
		}
		for _, extra := range append([]string{""}, verdictExtras[s.Name]...) {
			args := append(strings.Fields(extra), shortSettings(s)...)
			opt, err := parseVariant(args)
			if err == nil {
				err = scenario.CheckOwn(s, opt)
			}
			if err != nil {
				return nil, fmt.Errorf("variant %s %s: %w", s.Name, extra, err)
			}
			vs = append(vs, verdictVariant{Label: strings.TrimSpace(s.Name + " " + extra), Scenario: s, Args: args, Opt: opt})
		}
	}
	return vs, nil
}

// verdictJob is one run of the bench: one repetition of a variant.
type verdictJob struct{ variant, rep int }

// planVerdicts orders the runs: repetition by repetition in variant order,
// the routed variants last, so that a worker moving on to a routed lab has
// no use for its plain lab any more.
func planVerdicts(vs []verdictVariant, reps int) []verdictJob {
	var plan []verdictJob
	for _, routed := range []bool{false, true} {
		for rep := 1; rep <= reps; rep++ {
			for i, v := range vs {
				if v.Scenario.Routed == routed {
					plan = append(plan, verdictJob{variant: i, rep: rep})
				}
			}
		}
	}
	return plan
}

// verdictRun is one run's line in the bench's JSON.
type verdictRun struct {
	Run     int      `json:"run"`
	Variant string   `json:"variant"`
	Rep     int      `json:"rep"`
	Args    []string `json:"args"`
	Lab     string   `json:"lab"`
	RunDir  string   `json:"run_dir,omitempty"`
	// Verdict is result.json's verdict, or "failed" when the run did not
	// complete (Error says why).
	Verdict    string   `json:"verdict"`
	Error      string   `json:"error,omitempty"`
	Observed   string   `json:"observed,omitempty"`
	DetectS    *float64 `json:"detect_s,omitempty"`
	PredictedS *float64 `json:"predicted_s,omitempty"`
	TookS      float64  `json:"took_s"`
}

// verdictReport is the bench's outcome, printed by --json and written to
// OUT/verdicts.json.
type verdictReport struct {
	Out      string       `json:"out"`
	Reps     int          `json:"reps"`
	Parallel int          `json:"parallel"`
	Machine  string       `json:"machine"`
	TookS    float64      `json:"took_s"`
	Rows     []verdictRow `json:"rows"`
	Runs     []verdictRun `json:"runs"`
}

// verdictBench runs the plan on labs of its own.
type verdictBench struct {
	base     lab.Config
	prefix   string
	out      string
	reps     int
	variants []verdictVariant
	plan     []verdictJob
	log      *slog.Logger

	mu      sync.Mutex
	results [][]scenario.Result // by variant
	runs    []verdictRun
	labs    map[string]lab.Config // brought up by the bench and not yet down
	machine string
}

func newBenchVerdictsCmd(g *globals) *cobra.Command {
	f := &upFlags{}
	var reps, parallel int
	var names []string
	var out, prefix string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verdicts",
		Short: "Run every scenario and its variants N times on labs of its own; verdict counts, detection against prediction, timer lateness",
		Long: `Brings up labs of its own (PREFIX1…, routed PREFIXr1… for unreachable), runs every
scenario of the catalogue and a few variants N times with settings that keep each run short
(client tcp_retries2=5 where the client waits for a dead host; the router's short neighbour
timers for unreachable), takes the labs down again (also on failure and Ctrl-C), and prints
per variant: verdict counts, detection min/median/max against the prediction, and the timer
lateness measured. Every run folder stays under --out.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reps < 1 {
				return fmt.Errorf("--reps %d: must be at least 1", reps)
			}
			if parallel < 1 {
				return fmt.Errorf("--parallel %d: must be at least 1", parallel)
			}
			if err := checkDurations(cmd); err != nil {
				return err
			}
			if err := lab.ValidateName(prefix + "r1"); err != nil {
				return fmt.Errorf("--lab-prefix %q: %w", prefix, err)
			}
			variants, err := verdictVariants(names)
			if err != nil {
				return err
			}
			base, err := f.config(g)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(homeOf(g), "bench", "verdicts-"+time.Now().UTC().Format("20060102T150405Z"))
			}
			if out, err = filepath.Abs(out); err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("create --out folder: %w", err)
			}
			b := &verdictBench{base: base, prefix: prefix, out: out, reps: reps, variants: variants,
				plan: planVerdicts(variants, reps), log: benchLogger(g),
				results: make([][]scenario.Result, len(variants)), labs: map[string]lab.Config{}}
			return b.run(cmd.Context(), parallel, asJSON)
		},
	}
	f.register(cmd, false)
	_ = cmd.Flags().MarkHidden("routed") // the bench brings up routed labs itself
	fl := cmd.Flags()
	fl.IntVar(&reps, "reps", 3, "runs of each variant")
	fl.IntVar(&parallel, "parallel", 1, "labs running at once (each runs one experiment at a time)")
	fl.StringSliceVar(&names, "scenarios", nil, "only these scenarios, e.g. kill-server,power-off (default: all)")
	fl.StringVar(&out, "out", "", "folder for the run folders and verdicts.json (default HOME/bench/verdicts-TIMESTAMP)")
	fl.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	fl.StringVar(&prefix, "lab-prefix", "bench-v", "name prefix of the bench's labs: PREFIX1…, routed PREFIXr1…")
	return cmd
}

// benchLogger keeps the runs' own progress (retransmission lines,
// heartbeats) out of the bench's progress unless -v; warnings stay.
func benchLogger(g *globals) *slog.Logger {
	if g.verbose {
		return g.logger()
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: dropTime}))
}

// run runs the plan with parallel workers, takes the labs down and prints
// the summary, also when interrupted (then of the runs done so far).
func (b *verdictBench) run(ctx context.Context, parallel int, asJSON bool) error {
	defer b.downAll()
	parallel = min(parallel, len(b.plan))
	b.progress("bench verdicts: %d variant(s) × %d rep(s) = %d runs, %d lab(s) at a time; run folders under %s",
		len(b.variants), b.reps, len(b.plan), parallel, b.out)
	t0 := time.Now()
	eg, ectx := errgroup.WithContext(ctx)
	jobs := make(chan int)
	eg.Go(func() error {
		defer close(jobs)
		for i := range b.plan {
			select {
			case jobs <- i:
			case <-ectx.Done():
				return nil
			}
		}
		return nil
	})
	for w := 1; w <= parallel; w++ {
		eg.Go(func() error { return b.worker(ectx, w, jobs) })
	}
	werr := eg.Wait()
	b.downAll()
	if len(b.runs) == 0 {
		_ = os.Remove(b.out) // nothing ran: no empty folder left behind
		if werr != nil {
			return werr
		}
		return ctx.Err()
	}

	rep := verdictReport{Out: b.out, Reps: b.reps, Parallel: parallel, Machine: b.machine, TookS: time.Since(t0).Seconds()}
	for i, v := range b.variants {
		if len(b.results[i]) > 0 {
			rep.Rows = append(rep.Rows, summarizeVerdicts(v.Label, b.results[i]))
		}
	}
	rep.Runs = slices.SortedFunc(slices.Values(b.runs), func(x, y verdictRun) int { return x.Run - y.Run })
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.out, "verdicts.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	if asJSON {
		fmt.Printf("%s\n", js)
	} else {
		done := len(b.runs)
		fmt.Printf("verdicts of %d run(s) (%d variant(s) × %d rep(s)", done, len(b.variants), b.reps)
		if done < len(b.plan) {
			fmt.Printf(", %d not run", len(b.plan)-done)
		}
		fmt.Printf(") in %s; %s\n", time.Since(t0).Round(time.Second), b.machine)
		if err := writeVerdictTable(os.Stdout, rep.Rows); err != nil {
			return err
		}
		fmt.Println("short settings: client net.ipv4.tcp_retries2=5 (" + strings.Join(shortRetries, ", ") +
			"; every bench lab also boots with it); crash-reboot: client net.ipv4.tcp_retries2=8; unreachable: router net.ipv4.neigh.eth1.base_reachable_time_ms=1000, delay_first_probe_time=1")
		fmt.Printf("run folders under %s (summary in verdicts.json)\n", b.out)
	}
	if werr != nil {
		return werr
	}
	if ctx.Err() != nil {
		return fmt.Errorf("bench verdicts interrupted after %d of %d runs: %w", len(b.runs), len(b.plan), ctx.Err())
	}
	return nil
}

// worker runs jobs one at a time, each in this worker's plain or routed
// lab, brought up when first needed.
func (b *verdictBench) worker(ctx context.Context, w int, jobs <-chan int) error {
	var plain, routed *lab.Lab
	defer func() {
		for _, l := range []*lab.Lab{plain, routed} {
			if l != nil {
				l.Close()
			}
		}
	}()
	for i := range jobs {
		if ctx.Err() != nil {
			return nil
		}
		v := b.variants[b.plan[i].variant]
		slot := &plain
		if v.Scenario.Routed {
			slot = &routed
			if plain != nil {
				// Routed runs come last: no plain run is left for this lab.
				b.retire(plain)
				plain = nil
			}
		}
		if *slot == nil {
			l, err := b.bringUp(ctx, benchLabName(b.prefix, w, v.Scenario.Routed), v.Scenario.Routed)
			if err != nil {
				return err
			}
			*slot = l
		}
		if !b.runOne(ctx, i, *slot) && ctx.Err() == nil {
			// A failed run may leave its lab broken: the next run gets a
			// fresh one.
			b.retire(*slot)
			*slot = nil
		}
	}
	return nil
}

// benchLabName names worker w's lab: PREFIXw, or PREFIXrw when routed.
func benchLabName(prefix string, w int, routed bool) string {
	if routed {
		prefix += "r"
	}
	return prefix + strconv.Itoa(w)
}

// bringUp brings up a lab for the bench and records it for downAll.
func (b *verdictBench) bringUp(ctx context.Context, name string, routed bool) (*lab.Lab, error) {
	cfg := b.base
	cfg.Name, cfg.Routed, cfg.Sysctls = name, routed, benchLabSysctls
	cfg.Log = b.log.With("lab", name)
	kind := "lab"
	if routed {
		kind = "routed lab"
	}
	b.progress("%s %s: bringing it up", kind, name)
	t0 := time.Now()
	l, err := lab.Up(ctx, cfg)
	if errors.Is(err, lab.ErrLabExists) {
		// Not this bench's lab: leave it alone.
		return nil, fmt.Errorf("%w; or give the bench another --lab-prefix", err)
	}
	b.mu.Lock()
	b.labs[name] = cfg
	b.mu.Unlock()
	if err != nil {
		return nil, err // it names the lab
	}
	b.progress("%s %s: up in %s", kind, name, time.Since(t0).Round(100*time.Millisecond))
	b.mu.Lock()
	if b.machine == "" {
		b.machine = fmt.Sprintf("accel %s, guest kernel %s, %d host CPUs", l.State.Accel, l.State.KernelRelease, runtime.NumCPU())
	}
	b.mu.Unlock()
	return l, nil
}

// retire closes a lab and takes it down.
func (b *verdictBench) retire(l *lab.Lab) {
	l.Close()
	b.takeDown(l.Name())
}

// takeDown takes down a lab the bench brought up, with a context of its
// own so that it also happens after Ctrl-C.
func (b *verdictBench) takeDown(name string) {
	b.mu.Lock()
	cfg, ok := b.labs[name]
	delete(b.labs, name)
	b.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := lab.Down(ctx, cfg); err != nil {
		b.progress("lab %s: take down: %v", name, err)
		return
	}
	b.progress("lab %s: down", name)
}

// downAll takes down every lab the bench brought up and still holds.
func (b *verdictBench) downAll() {
	b.mu.Lock()
	names := slices.Sorted(maps.Keys(b.labs))
	b.mu.Unlock()
	for _, n := range names {
		b.takeDown(n)
	}
}

// runOne runs job i in lab l, records its result and reports whether the
// run completed.
func (b *verdictBench) runOne(ctx context.Context, i int, l *lab.Lab) bool {
	job := b.plan[i]
	v := b.variants[job.variant]
	tag := fmt.Sprintf("run %d/%d", i+1, len(b.plan))
	b.progress("%s  %s  (rep %d/%d, lab %s)", tag, v.Label, job.rep, b.reps, l.Name())
	out := filepath.Join(b.out, slug(v.Label), fmt.Sprintf("rep-%d", job.rep))
	t0 := time.Now()
	res, err := scenario.Execute(ctx, v.Scenario, v.Opt, scenario.Config{Lab: l, Out: out, Log: b.log.With("lab", l.Name())})
	took := time.Since(t0)
	var r scenario.Result
	if res != nil {
		r = *res
	}
	rec := verdictRun{Run: i + 1, Variant: v.Label, Rep: job.rep, Args: v.Args, Lab: l.Name(), RunDir: r.RunDir, TookS: took.Seconds()}
	if err != nil {
		r.Scenario, r.Complete = v.Scenario.Name, false
		if r.Incomplete == "" {
			r.Incomplete = err.Error()
		}
		rec.Verdict, rec.Error = "failed", err.Error()
		b.progress("%s  %s: failed after %s: %v", tag, v.Label, took.Round(time.Second), err)
	} else {
		rec.Verdict, rec.Observed, rec.DetectS, rec.PredictedS = r.Verdict.String(), r.Observed.Error, r.Observed.DetectS, r.PredictedS
		b.progress("%s  %s: %s, %s in %s; %s", tag, v.Label, r.Verdict, detection(r), took.Round(time.Second), r.RunDir)
	}
	b.mu.Lock()
	b.results[job.variant] = append(b.results[job.variant], r)
	b.runs = append(b.runs, rec)
	b.mu.Unlock()
	return err == nil
}

// detection says in a few words what the client saw and when, against the
// prediction.
func detection(r scenario.Result) string {
	s := orNone(r.Observed.Error)
	if r.Observed.DetectS != nil {
		s += fmt.Sprintf(" at %.3f s", *r.Observed.DetectS)
	}
	if r.PredictedS != nil {
		s += fmt.Sprintf(" (predicted %.3f s)", *r.PredictedS)
	}
	return s
}

// orNone is s, or "nothing" when it is empty.
func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// progress prints one progress line on stderr.
func (b *verdictBench) progress(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// slug makes a folder name of a variant's label.
func slug(label string) string {
	var sb strings.Builder
	dash := false
	for _, c := range strings.ToLower(label) {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.'
		if !ok {
			dash = sb.Len() > 0
			continue
		}
		if dash {
			sb.WriteByte('-')
			dash = false
		}
		sb.WriteRune(c)
	}
	return sb.String()
}
