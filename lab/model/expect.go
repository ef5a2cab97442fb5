package model

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Window bounds when the client may learn, in time since the fault on the
// host's clock. The kernel never acts before its rule allows, and timers
// only ever fire late, so a window need not be symmetric around Nominal:
// Earliest is what the mechanism allows at the soonest, Latest adds the
// lateness this run measured.
type Window struct {
	// Earliest is the soonest detection the mechanism allows.
	Earliest time.Duration `json:"earliest_ns"`
	// Latest is the latest detection the mechanism allows, including the
	// measured timer lateness.
	Latest time.Duration `json:"latest_ns"`
	// Nominal is the detection with every timer on time; 0 when the
	// mechanism gives only a bound.
	Nominal time.Duration `json:"nominal_ns,omitempty"`
	// Slack is the anchors' own measurement uncertainty (clock bounds of the
	// evidence the window is computed from), allowed on both sides.
	Slack time.Duration `json:"slack_ns"`
	// Bound is true when only a bound is known, not a prediction derived
	// from a mechanism; the output then calls it a bound.
	Bound bool `json:"bound,omitempty"`
	// Basis says in one line what the window is derived from.
	Basis string `json:"basis"`
}

// String renders the window, e.g. "14.024..14.712 s (nominal 14.320 s, ±0.001 s)".
func (w Window) String() string {
	s := fmt.Sprintf("%.3f..%.3f s", w.Earliest.Seconds(), w.Latest.Seconds())
	if w.Nominal != 0 {
		s += fmt.Sprintf(" (nominal %.3f s", w.Nominal.Seconds())
		if w.Slack > 0 {
			s += fmt.Sprintf(", ±%.3f s", w.Slack.Seconds())
		}
		s += ")"
	} else if w.Slack > 0 {
		s += fmt.Sprintf(" (±%.3f s)", w.Slack.Seconds())
	}
	return s
}

// Expectation is what a scenario expects the client to observe.
type Expectation struct {
	// Errors lists the acceptable errno or outcome names (see ETIMEDOUT and
	// friends); it must not be empty, or the verdict is Unknown.
	Errors []string `json:"errors,omitempty"`
	// Reason says in one line why this is expected.
	Reason string `json:"reason"`
	// Window, when set, bounds the detection time.
	Window *Window `json:"window,omitempty"`
	// Missing, when set, says why no prediction could be made; the verdict
	// is then Unknown whatever was observed.
	Missing string `json:"missing,omitempty"`
}

// Result is a verdict with the reason for it.
type Result struct {
	// Verdict is the three-valued outcome.
	Verdict Verdict `json:"verdict"`
	// Why states the observation, the prediction and the window compared.
	Why string `json:"why"`
}

// Check compares an observed error name and detection time (± bound, the
// measurement's own uncertainty) with the expectation.
//
// A missing prediction or an empty list of errors gives Unknown, whatever
// was observed: a verdict must be able to fail. No observed error gives
// Expected if Errors lists NoError and Unknown otherwise (the run may have
// ended first); a negative bound or detection time gives Unknown. An error
// outside Errors gives Unexpected. With a window, the detection is accepted
// iff [observed-bound, observed+bound] meets [Earliest-Slack, Latest+Slack];
// otherwise the verdict is Unexpected.
func (e Expectation) Check(observedErr string, observedDetect, bound time.Duration) Result {
	obs := fmt.Sprintf("observed %s at %s ± %s", observedErr, secs(observedDetect), secs(bound))
	if e.Missing != "" {
		return Result{Unknown, "no prediction: " + e.Missing}
	}
	if len(e.Errors) == 0 {
		return Result{Unknown, "no prediction: the expectation names no outcome (" + e.Reason + ")"}
	}
	if observedErr == "" {
		if slices.Contains(e.Errors, NoError) {
			return Result{Expected, fmt.Sprintf("no error observed, as expected (%s)", e.Reason)}
		}
		return Result{Unknown, fmt.Sprintf("no error observed; expected %s (%s)", e.errs(), e.Reason)}
	}
	if bound < 0 || observedDetect < 0 {
		return Result{Unknown, obs + ": negative time or bound, cannot compare"}
	}
	if !slices.ContainsFunc(e.Errors, func(s string) bool { return strings.EqualFold(s, observedErr) }) {
		return Result{Unexpected, fmt.Sprintf("%s; expected %s (%s)", obs, e.errs(), e.Reason)}
	}
	w := e.Window
	if w == nil {
		return Result{Expected, fmt.Sprintf("%s; expected %s, no timing predicted (%s)", obs, e.errs(), e.Reason)}
	}
	kind := "window"
	if w.Bound {
		kind = "bound"
	}
	lo, hi := w.Earliest-w.Slack, w.Latest+w.Slack
	pred := fmt.Sprintf("%s %s (%s)", kind, w, w.Basis)
	switch {
	case observedDetect+bound < lo:
		return Result{Unexpected, fmt.Sprintf("%s; %s: %s too early", obs, pred, secs(lo-observedDetect-bound))}
	case observedDetect-bound > hi:
		return Result{Unexpected, fmt.Sprintf("%s; %s: %s too late", obs, pred, secs(observedDetect-bound-hi))}
	}
	return Result{Expected, fmt.Sprintf("%s; %s: within", obs, pred)}
}

// errs renders the acceptable error names.
func (e Expectation) errs() string {
	if len(e.Errors) == 0 {
		return "nothing"
	}
	return strings.Join(e.Errors, " or ")
}

// CombineResults composes results with Combine and joins the reasons of the
// results that carry the combined verdict.
func CombineResults(rs ...Result) Result {
	vs := make([]Verdict, len(rs))
	for i, r := range rs {
		vs[i] = r.Verdict
	}
	out := Result{Verdict: Combine(vs...)}
	var whys []string
	for _, r := range rs {
		if r.Verdict == out.Verdict {
			whys = append(whys, r.Why)
		}
	}
	out.Why = strings.Join(whys, "; ")
	if len(rs) == 0 {
		out.Why = "nothing checked"
	}
	return out
}
