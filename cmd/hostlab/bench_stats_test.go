package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/scenario"
)

func f64(x float64) *float64 { return &x }

// done is a completed run's result.
func done(v model.Verdict, errno string, detect, predicted *float64, late *scenario.Lateness) scenario.Result {
	return scenario.Result{Scenario: "power-off", Verdict: v, Complete: true, Observed: scenario.Observed{Error: errno, DetectS: detect},
		PredictedS: predicted, Lateness: late}
}

func TestSummarizeVerdictsCounts(t *testing.T) {
	rs := []scenario.Result{
		done(model.Expected, "ETIMEDOUT", f64(14.9), f64(14.3), nil),
		done(model.Unexpected, "EHOSTUNREACH", f64(17.0), f64(14.3), nil),
		done(model.Unknown, "", nil, f64(14.3), nil),
		done(model.Expected, "ETIMEDOUT", f64(14.5), f64(14.3), nil),
		// A failed run counts as failed only, whatever its partial result says.
		{Scenario: "power-off", Verdict: model.Unexpected, Complete: false, Incomplete: "fault: boom",
			Observed: scenario.Observed{Error: "ECONNRESET", DetectS: f64(99)}, PredictedS: f64(1)},
	}
	got := summarizeVerdicts("power-off", rs)
	want := verdictRow{Variant: "power-off", Runs: 5, Expected: 2, Unexpected: 1, Unknown: 1, Failed: 1,
		Observed:   map[string]int{"ETIMEDOUT": 2, "EHOSTUNREACH": 1, "none": 1},
		DetectS:    &spread{N: 3, Min: 14.5, Median: 14.9, Max: 17.0},
		PredictedS: &spread{N: 4, Min: 14.3, Median: 14.3, Max: 14.3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summarizeVerdicts =\n%+v\nwant\n%+v", got, want)
	}
}

func TestSpreadMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want *spread
	}{
		{nil, nil},
		{[]float64{3}, &spread{N: 1, Min: 3, Median: 3, Max: 3}},
		{[]float64{5, 1, 3}, &spread{N: 3, Min: 1, Median: 3, Max: 5}},
		{[]float64{4, 1, 3, 2}, &spread{N: 4, Min: 1, Median: 2.5, Max: 4}},
		{[]float64{2, 1}, &spread{N: 2, Min: 1, Median: 1.5, Max: 2}},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.xs...)
		if got := spreadOf(tt.xs); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("spreadOf(%v) = %+v; want %+v", tt.xs, got, tt.want)
		}
		if !reflect.DeepEqual(in, tt.xs) {
			t.Errorf("spreadOf reordered its input: %v", tt.xs)
		}
	}
}

func TestSummarizeVerdictsMissing(t *testing.T) {
	// Nothing to spread: no detection, no prediction, no lateness.
	got := summarizeVerdicts("kill-server", []scenario.Result{done(model.Unknown, "", nil, nil, nil)})
	if got.DetectS != nil || got.PredictedS != nil || got.Lateness != nil || got.Unknown != 1 || got.Observed["none"] != 1 {
		t.Errorf("summarizeVerdicts = %+v; want no spreads, one unknown run that observed none", got)
	}
	// Only failed runs: counts only.
	got = summarizeVerdicts("shutdown", []scenario.Result{{Scenario: "shutdown"}, {Scenario: "shutdown", Incomplete: "x"}})
	want := verdictRow{Variant: "shutdown", Runs: 2, Failed: 2}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summarizeVerdicts(failed runs) = %+v; want %+v", got, want)
	}
	// No results at all.
	if got := summarizeVerdicts("sigpipe", nil); !reflect.DeepEqual(got, verdictRow{Variant: "sigpipe"}) {
		t.Errorf("summarizeVerdicts(nil) = %+v", got)
	}
}

func TestSummarizeVerdictsLateness(t *testing.T) {
	rs := []scenario.Result{
		done(model.Expected, "ETIMEDOUT", f64(14), f64(14), &scenario.Lateness{Timers: 6, MaxS: 0.010, MeanS: 0.004, Source: "wire"}),
		done(model.Expected, "ETIMEDOUT", f64(15), f64(14), nil), // no timers measured
		done(model.Expected, "ETIMEDOUT", f64(16), f64(15), &scenario.Lateness{Timers: 2, MaxS: 0.030, MeanS: 0.020, Source: "tcp_info"}),
	}
	got := summarizeVerdicts("power-off", rs).Lateness
	// Mean over every timer: (6×0.004 + 2×0.020) / 8 = 0.008.
	if got == nil || got.Runs != 2 || got.Timers != 8 || got.MaxS != 0.030 || !near(got.MeanS, 0.008) {
		t.Errorf("lateness = %+v; want 2 runs, 8 timers, max 0.030, mean 0.008", got)
	}
	// Lateness records without a timer count: the plain mean of the means.
	rs = []scenario.Result{
		done(model.Expected, "ETIMEDOUT", f64(1), nil, &scenario.Lateness{MaxS: 0.1, MeanS: 0.02}),
		done(model.Expected, "ETIMEDOUT", f64(1), nil, &scenario.Lateness{MaxS: 0.2, MeanS: 0.04}),
	}
	if got := summarizeVerdicts("x", rs).Lateness; got == nil || got.MaxS != 0.2 || !near(got.MeanS, 0.03) {
		t.Errorf("lateness without timer counts = %+v; want max 0.2, mean 0.03", got)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestWriteVerdictTable(t *testing.T) {
	rows := []verdictRow{
		summarizeVerdicts("power-off --user-timeout 6s", []scenario.Result{
			done(model.Expected, "ETIMEDOUT", f64(6.2), f64(6.0), &scenario.Lateness{Timers: 3, MaxS: 0.012, MeanS: 0.006}),
			done(model.Expected, "ETIMEDOUT", f64(6.4), f64(6.1), &scenario.Lateness{Timers: 3, MaxS: 0.008, MeanS: 0.004}),
		}),
		summarizeVerdicts("shutdown", []scenario.Result{{Scenario: "shutdown"}}),
	}
	var b strings.Builder
	if err := writeVerdictTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines; want a header and 2 rows:\n%s", len(lines), b.String())
	}
	for _, want := range []string{"ETIMEDOUT×2", "6.200 / 6.300 / 6.400", "6.000–6.100", "0.012 / 0.005"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if f := strings.Fields(lines[2]); len(f) != 10 || f[5] != "1" || f[6] != "-" {
		t.Errorf("failed-only row %q; want RUNS 1, FAILED 1 and '-' for every figure", lines[2])
	}
	// Columns line up: every row's FAILED column starts where the header's does.
	col := strings.Index(lines[0], "FAILED")
	for _, l := range lines[1:] {
		if l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("row %q is not aligned with the header at column %d", l, col)
		}
	}
}

func TestObservedCell(t *testing.T) {
	if got := observedCell(map[string]int{"EOF": 1}); got != "EOF" {
		t.Errorf("one run: %q", got)
	}
	if got := observedCell(map[string]int{"ECONNRESET": 1, "EOF": 2, "EPIPE": 1}); got != "EOF×2 ECONNRESET×1 EPIPE×1" {
		t.Errorf("several runs: %q", got)
	}
	if got := observedCell(nil); got != "-" {
		t.Errorf("no runs: %q", got)
	}
}
