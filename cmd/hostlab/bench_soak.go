package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/scenario"
)

// soakRound is what the soak bench runs in each round, in order, each with
// the short settings of the verdicts bench (client tcp_retries2=5).
var soakRound = []string{"crash-reboot", "power-off"}

// soakRun is one run of the soak bench.
type soakRun struct {
	Run      int    `json:"run"`
	Round    int    `json:"round"`
	Scenario string `json:"scenario"`
	// Verdict is result.json's verdict, or "failed" when the run did not
	// complete (Error says why).
	Verdict  string   `json:"verdict"`
	Error    string   `json:"error,omitempty"`
	Observed string   `json:"observed,omitempty"`
	DetectS  *float64 `json:"detect_s,omitempty"`
	RunDir   string   `json:"run_dir,omitempty"`
	TookS    float64  `json:"took_s"`
	// Replaced says the lab was replaced after this failed run.
	Replaced bool      `json:"lab_replaced,omitempty"`
	Before   soakProbe `json:"before"`
	After    soakProbe `json:"after"`
}

// soakLeak is one metric's course over the soak, and whether it leaks.
type soakLeak struct {
	Metric string `json:"metric"`
	// Unit is "count" or "bytes".
	Unit string `json:"unit"`
	// First and Last are the metric after the first and the last run; Min
	// and Max its range after every run.
	First int64 `json:"after_first_run"`
	Last  int64 `json:"after_last_run"`
	Min   int64 `json:"min"`
	Max   int64 `json:"max"`
	// Start, LabUp and End are the metric before the lab was up, once it
	// was up, and after it was taken down.
	Start *int64 `json:"start,omitempty"`
	LabUp *int64 `json:"lab_up,omitempty"`
	End   *int64 `json:"end,omitempty"`
	// Grew says the metric leaks: it drifted up across the runs (its
	// lowest value over the last third of the runs is above its highest
	// over the first third), or the lab left some of it behind (Why says
	// which).
	Grew bool   `json:"grew"`
	Why  string `json:"why,omitempty"`
	Note string `json:"note,omitempty"`
}

// soakReport is the soak bench's outcome, printed by --json and written to
// OUT/soak.json.
type soakReport struct {
	Lab      string       `json:"lab"`
	Out      string       `json:"out"`
	Rounds   int          `json:"rounds"`
	Round    []string     `json:"round"`
	Machine  string       `json:"machine"`
	TookS    float64      `json:"took_s"`
	Start    soakProbe    `json:"start"`
	LabUp    soakProbe    `json:"lab_up"`
	End      *soakProbe   `json:"end,omitempty"`
	Runs     []soakRun    `json:"runs"`
	Verdicts []verdictRow `json:"verdicts"`
	Leaks    []soakLeak   `json:"leaks"`
	Replaced int          `json:"labs_replaced"`
}

// soakBench runs the soak in one lab of its own.
type soakBench struct {
	base    lab.Config
	name    string
	home    string
	out     string
	rounds  int
	plan    []verdictVariant
	log     *slog.Logger
	up      bool // the lab is up and must be taken down
	results map[string][]scenario.Result
}

func newBenchSoakCmd(g *globals) *cobra.Command {
	f := &upFlags{}
	var rounds int
	var out, prefix, report string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "soak",
		Short: "Run crash-reboot and power-off back to back N times in one lab; report leaks and verdict counts",
		Long: `Brings up a lab of its own (PREFIX1), runs N rounds of crash-reboot and power-off
(client tcp_retries2=5) back to back in it, takes it down (also on failure and Ctrl-C), and
reports what a leak would make grow, measured before the lab is up, before and after each
run, and after the lab is down: the lab's libvirt domains and QEMU processes, this process's
open file descriptors and goroutines, the TCP listening and UDP sockets of this process and
the lab's QEMUs, and the size of the lab folder, the cache and HOME; then the verdict counts.
Every run folder stays under --out.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if report != "" {
				return resummarizeSoak(report, asJSON)
			}
			if rounds < 1 {
				return fmt.Errorf("--runs %d: must be at least 1", rounds)
			}
			if err := checkDurations(cmd); err != nil {
				return err
			}
			name := prefix + "1"
			if err := lab.ValidateName(name); err != nil {
				return fmt.Errorf("--lab-prefix %q: %w", prefix, err)
			}
			var plan []verdictVariant
			for _, n := range soakRound {
				s, err := scenario.Lookup(n)
				if err != nil {
					return err
				}
				args := shortSettings(s)
				opt, err := parseVariant(args)
				if err == nil {
					err = scenario.CheckOwn(s, opt)
				}
				if err != nil {
					return fmt.Errorf("soak %s: %w", n, err)
				}
				plan = append(plan, verdictVariant{Label: n, Scenario: s, Args: args, Opt: opt})
			}
			base, err := f.config(g)
			if err != nil {
				return err
			}
			home, err := filepath.Abs(homeOf(g))
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(home, "bench", "soak-"+time.Now().UTC().Format("20060102T150405Z"))
			}
			if out, err = filepath.Abs(out); err != nil {
				return err
			}
			if err := checkOutDir("--out", out); err != nil {
				return err
			}
			b := &soakBench{base: base, name: name, home: home, out: out, rounds: rounds, plan: plan,
				log: benchLogger(g), results: map[string][]scenario.Result{}}
			return b.run(cmd.Context(), asJSON)
		},
	}
	f.register(cmd, false)
	_ = cmd.Flags().MarkHidden("routed") // the soak's scenarios need no router
	fl := cmd.Flags()
	fl.IntVar(&rounds, "runs", 10, "rounds, each a crash-reboot run then a power-off run")
	fl.StringVar(&out, "out", "", "folder for the run folders and soak.json (default HOME/bench/soak-TIMESTAMP)")
	fl.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fl.StringVar(&prefix, "lab-prefix", "bench-s", "name prefix of the soak's lab: PREFIX1")
	fl.StringVar(&report, "report", "", "print the report of an earlier soak again from its soak.json (leaks judged by this build)")
	return cmd
}

// resummarizeSoak prints the report of an earlier soak from its soak.json.
func resummarizeSoak(path string, asJSON bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--report: %w: give a soak.json", err)
	}
	var rep soakReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("--report %s: %v: give a soak.json written by hostlab bench soak", path, err)
	}
	rep.Leaks = soakLeaks(rep)
	if asJSON {
		js, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		fmt.Printf("%s\n", js)
		return nil
	}
	return writeSoakReport(os.Stdout, rep, rep.Rounds*len(rep.Round))
}

// run brings the lab up, runs the rounds, takes the lab down and reports,
// also when interrupted (then of the runs done so far).
func (b *soakBench) run(ctx context.Context, asJSON bool) error {
	defer b.takeDown()
	t0 := time.Now()
	n := b.rounds * len(b.plan)
	progress("bench soak: %d round(s) of %s = %d runs in lab %s; run folders under %s",
		b.rounds, strings.Join(soakRound, ", "), n, b.name, b.out)
	rep := soakReport{Lab: b.name, Out: b.out, Rounds: b.rounds, Round: soakRound}
	rep.Start = b.probe(ctx, "start", 0)
	l, err := b.bringUp(ctx)
	if err != nil {
		return err
	}
	rep.Machine = fmt.Sprintf("accel %s, guest kernel %s, %d host CPUs", l.State.Accel, l.State.KernelRelease, runtime.NumCPU())
	rep.LabUp = b.probe(ctx, "lab up", 0)
	var werr error
	i := 0
rounds:
	for round := 1; round <= b.rounds; round++ {
		for _, v := range b.plan {
			if ctx.Err() != nil {
				break rounds
			}
			i++
			run, ok := b.runOne(ctx, l, i, n, round, v)
			if !ok && ctx.Err() == nil {
				// A failed run may leave the lab broken: replace it, and
				// count it, since it resets what the lab holds.
				l.Close()
				b.takeDown()
				if l, err = b.bringUp(ctx); err != nil {
					werr = err
					rep.Runs = append(rep.Runs, run)
					break rounds
				}
				run.Replaced = true
				rep.Replaced++
			}
			rep.Runs = append(rep.Runs, run)
		}
	}
	if l != nil {
		l.Close()
	}
	b.takeDown()
	end := b.probe(context.Background(), "end", 0)
	rep.End = &end
	rep.TookS = time.Since(t0).Seconds()
	for _, v := range b.plan {
		if rs := b.results[v.Label]; len(rs) > 0 {
			rep.Verdicts = append(rep.Verdicts, summarizeVerdicts(v.Label, rs))
		}
	}
	rep.Leaks = soakLeaks(rep)
	if len(rep.Runs) > 0 {
		js, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.MkdirAll(b.out, 0o755); err != nil {
			return fmt.Errorf("write soak.json: %w", err)
		}
		if err := os.WriteFile(filepath.Join(b.out, "soak.json"), append(js, '\n'), 0o644); err != nil {
			return fmt.Errorf("write soak.json: %w", err)
		}
		if asJSON {
			fmt.Printf("%s\n", js)
		} else if err := writeSoakReport(os.Stdout, rep, n); err != nil {
			return err
		}
	}
	if werr != nil {
		return werr
	}
	if ctx.Err() != nil {
		return fmt.Errorf("bench soak interrupted after %d of %d runs: %w", len(rep.Runs), n, ctx.Err())
	}
	return nil
}

// bringUp brings the soak's lab up; a lab of that name that is already
// there is an error, never taken over.
func (b *soakBench) bringUp(ctx context.Context) (*lab.Lab, error) {
	cfg := b.base
	cfg.Name, cfg.Routed, cfg.Sysctls = b.name, false, benchLabSysctls
	cfg.Log = b.log.With("lab", b.name)
	progress("lab %s: bringing it up", b.name)
	t0 := time.Now()
	l, err := lab.Up(ctx, cfg)
	if errors.Is(err, lab.ErrLabExists) {
		return nil, fmt.Errorf("%w; or give the soak another --lab-prefix", err)
	}
	b.up = true // Up removes what it created on failure; down is idempotent
	if err != nil {
		return nil, err
	}
	progress("lab %s: up in %s", b.name, time.Since(t0).Round(100*time.Millisecond))
	return l, nil
}

// takeDown takes the soak's lab down, with a context of its own so that it
// also happens after Ctrl-C.
func (b *soakBench) takeDown() {
	if !b.up {
		return
	}
	b.up = false
	cfg := b.base
	cfg.Name = b.name
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := lab.Down(ctx, cfg); err != nil {
		progress("lab %s: take down: %v", b.name, err)
		return
	}
	progress("lab %s: down", b.name)
}

// runOne runs scenario variant v as run i of n, with a probe before and
// after, and reports whether it completed.
func (b *soakBench) runOne(ctx context.Context, l *lab.Lab, i, n, round int, v verdictVariant) (soakRun, bool) {
	tag := fmt.Sprintf("run %d/%d", i, n)
	rec := soakRun{Run: i, Round: round, Scenario: v.Label}
	rec.Before = b.probe(ctx, "before", i)
	progress("%s  %s  (round %d/%d)", tag, v.Label, round, b.rounds)
	t0 := time.Now()
	res, err := scenario.Execute(ctx, v.Scenario, v.Opt, scenario.Config{Lab: l, Out: b.out, Log: b.log.With("lab", b.name)})
	rec.TookS = time.Since(t0).Seconds()
	var r scenario.Result
	if res != nil {
		r = *res
	}
	rec.RunDir = r.RunDir
	if err != nil {
		r.Scenario, r.Complete = v.Scenario.Name, false
		rec.Verdict, rec.Error = "failed", err.Error()
	} else {
		rec.Verdict, rec.Observed, rec.DetectS = r.Verdict.String(), r.Observed.Error, r.Observed.DetectS
	}
	b.results[v.Label] = append(b.results[v.Label], r)
	rec.After = b.probe(ctx, "after", i)
	a := rec.After
	if err != nil {
		progress("%s  %s: failed after %s: %v", tag, v.Label, time.Duration(rec.TookS*float64(time.Second)).Round(time.Second), err)
	} else {
		progress("%s  %s: %s, %s in %s; fds %d, goroutines %d, qemu %d, listening %d, lab folder %s",
			tag, v.Label, r.Verdict, detection(r), time.Duration(rec.TookS*float64(time.Second)).Round(time.Second),
			a.FDs, a.Goroutines, a.QEMU, a.Listening, humanBytes(a.LabBytes))
	}
	return rec, err == nil
}

// soakLeaks judges each metric. A leak grows with the number of runs, so
// the course across the runs decides, not two samples of a value that
// moves as goroutines and connections come and go: the lowest value over
// the last third of the runs must not be above the highest over the first
// third. After the lab is down, what it held (domains, QEMU processes,
// their sockets) must be back at the start, and this process's fds and
// goroutines no higher than with the lab up before any run.
func soakLeaks(rep soakReport) []soakLeak {
	if len(rep.Runs) == 0 {
		return nil
	}
	type metric struct {
		name  string
		get   func(soakProbe) int64
		end   string // "start": back at the start after down; "lab up": no higher than with the lab up
		note  string
		bytes bool
	}
	metrics := []metric{
		{"domains of the lab", func(p soakProbe) int64 { return int64(p.Domains) }, "start", "", false},
		{"QEMU processes of the lab", func(p soakProbe) int64 { return int64(p.QEMU) }, "start", "", false},
		{"open fds of hostlab", func(p soakProbe) int64 { return int64(p.FDs) }, "lab up", "", false},
		{"goroutines of hostlab", func(p soakProbe) int64 { return int64(p.Goroutines) }, "lab up", "", false},
		{"listening TCP sockets (hostlab and the lab's QEMUs)", func(p soakProbe) int64 { return int64(p.Listening) }, "start", "", false},
		{"UDP sockets (hostlab and the lab's QEMUs)", func(p soakProbe) int64 { return int64(p.UDP) }, "start", "", false},
		{"lab folder", func(p soakProbe) int64 { return p.LabBytes }, "",
			"the lab's console logs and lab-link pcaps grow with every run; down removes them", true},
		{"cache", func(p soakProbe) int64 { return p.CacheBytes }, "", "other builds sharing HOME add images too", true},
		{"HOME without the run folders", func(p soakProbe) int64 { return p.HomeBytes }, "",
			"other labs and benches sharing HOME count too", true},
	}
	third := max(len(rep.Runs)/3, 1)
	var out []soakLeak
	for _, m := range metrics {
		vals := make([]int64, len(rep.Runs))
		for i, r := range rep.Runs {
			vals[i] = m.get(r.After)
		}
		lk := soakLeak{Metric: m.name, Unit: "count", First: vals[0], Last: vals[len(vals)-1],
			Min: slices.Min(vals), Max: slices.Max(vals), Note: m.note}
		if m.bytes {
			lk.Unit = "bytes"
		}
		if len(vals) >= 2 {
			early, late := slices.Max(vals[:third]), slices.Min(vals[len(vals)-third:])
			if late > early {
				lk.Grew, lk.Why = true, fmt.Sprintf("over the last %d run(s) never below %s, above the first %d run(s)' highest %s", third, lk.figure(late), third, lk.figure(early))
			}
		}
		if m.end != "" && rep.End != nil {
			s, u, e := m.get(rep.Start), m.get(rep.LabUp), m.get(*rep.End)
			lk.Start, lk.LabUp, lk.End = &s, &u, &e
			switch {
			case m.end == "start" && e > s:
				lk.Grew, lk.Why = true, fmt.Sprintf("%s left after the lab is down (%s at the start)", lk.figure(e), lk.figure(s))
			case m.end == "lab up" && e > max(s, u):
				lk.Grew, lk.Why = true, fmt.Sprintf("%s after the lab is down, more than with the lab up (%s)", lk.figure(e), lk.figure(max(s, u)))
			}
		}
		out = append(out, lk)
	}
	return out
}

// writeSoakReport prints the soak's table, verdicts and leaks.
func writeSoakReport(w io.Writer, rep soakReport, planned int) error {
	fmt.Fprintf(w, "soak of %d run(s) (%d round(s) of %s", len(rep.Runs), rep.Rounds, strings.Join(rep.Round, ", "))
	if len(rep.Runs) < planned {
		fmt.Fprintf(w, ", %d not run", planned-len(rep.Runs))
	}
	fmt.Fprintf(w, ") in lab %s in %s; %s\n", rep.Lab, (time.Duration(rep.TookS) * time.Second).Round(time.Second), rep.Machine)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSCENARIO\tVERDICT\tTOOK\tDOMAINS\tQEMU\tFDS\tGOROUTINES\tLISTEN\tUDP\tLAB DIR\tCACHE\tHOME")
	row := func(run, scen, verdict, took string, p soakProbe) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", run, scen, verdict, took,
			p.Domains, p.QEMU, p.FDs, p.Goroutines, p.Listening, p.UDP, humanBytes(p.LabBytes), humanBytes(p.CacheBytes), humanBytes(p.HomeBytes))
	}
	row("-", "(start)", "-", "-", rep.Start)
	row("-", "(lab up)", "-", "-", rep.LabUp)
	for _, r := range rep.Runs {
		v := r.Verdict
		if r.Replaced {
			v += " (lab replaced)"
		}
		row(strconv.Itoa(r.Run), r.Scenario, v, (time.Duration(r.TookS) * time.Second).String(), r.After)
	}
	if rep.End != nil {
		row("-", "(end, lab down)", "-", "-", *rep.End)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "columns after each run; soak.json has the probes before each run too, and host-wide counts (all hostlab domains, QEMUs, listening sockets)")
	if err := writeVerdictTable(w, rep.Verdicts); err != nil {
		return err
	}
	fmt.Fprintln(w, "leaks (after run 1 → after the last run, range over the runs; start / lab up / end after down):")
	for _, lk := range rep.Leaks {
		s := fmt.Sprintf("  %-52s %s → %s (%s–%s)", lk.Metric, lk.figure(lk.First), lk.figure(lk.Last), lk.figure(lk.Min), lk.figure(lk.Max))
		if lk.Start != nil && lk.LabUp != nil && lk.End != nil {
			s += fmt.Sprintf("; %s / %s / %s", lk.figure(*lk.Start), lk.figure(*lk.LabUp), lk.figure(*lk.End))
		}
		if lk.Unit == "bytes" && len(rep.Runs) > 1 {
			s += fmt.Sprintf(", %s per run", humanBytes((lk.Last-lk.First)/int64(len(rep.Runs)-1)))
		}
		switch {
		case lk.Grew:
			s += ": GROWS: " + lk.Why
		default:
			s += ": no leak"
		}
		if lk.Note != "" {
			s += " (" + lk.Note + ")"
		}
		fmt.Fprintln(w, s)
	}
	if rep.Replaced > 0 {
		fmt.Fprintf(w, "the lab was replaced %d time(s) after a failed run\n", rep.Replaced)
	}
	fmt.Fprintf(w, "run folders under %s (report in soak.json)\n", rep.Out)
	return nil
}

// figure prints one of the metric's values: bytes humanly, counts as they
// are.
func (lk soakLeak) figure(v int64) string {
	if lk.Unit == "bytes" {
		return humanBytes(v)
	}
	return strconv.FormatInt(v, 10)
}

// humanBytes prints a size in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	switch {
	case n < 0:
		return "-" + humanBytes(-n)
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// progress prints one progress line on stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
