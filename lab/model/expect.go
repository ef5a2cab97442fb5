package model

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Tolerance is a packetdrill-style timing tolerance: an absolute allowance
// plus a percentage of the predicted delay, applied on both sides.
type Tolerance struct {
	// Abs is the absolute allowance.
	Abs time.Duration `json:"abs_ns"`
	// Pct is the allowance in percent of the predicted delay.
	Pct float64 `json:"pct"`
}

// Allowed is the total allowance for a predicted delay: Abs + Pct% of it.
func (t Tolerance) Allowed(predicted time.Duration) time.Duration {
	if predicted < 0 {
		predicted = -predicted
	}
	return t.Abs + time.Duration(float64(predicted)*t.Pct/100)
}

// String states the tolerance explicitly, e.g. "0.756 s + 0%".
func (t Tolerance) String() string {
	return fmt.Sprintf("%s + %g%%", secs(t.Abs), t.Pct)
}

// Expectation is what a scenario expects the client to observe.
type Expectation struct {
	// Errors lists the acceptable errno or outcome names (see ETIMEDOUT and
	// friends); empty means the error is not constrained.
	Errors []string `json:"errors,omitempty"`
	// Reason says in one line why this is expected.
	Reason string `json:"reason"`
	// Detect is the predicted detection time on the scenario's axis; 0 means
	// no timing prediction.
	Detect time.Duration `json:"detect_ns,omitempty"`
	// Tol is the allowance around Detect.
	Tol Tolerance `json:"tolerance"`
}

// Result is a verdict with the reason for it.
type Result struct {
	// Verdict is the three-valued outcome.
	Verdict Verdict `json:"verdict"`
	// Why states the observation, the prediction and the tolerance compared.
	Why string `json:"why"`
}

// Check compares an observed error name and detection time (± bound, the
// measurement's own uncertainty) with the expectation.
//
// No observed error gives Expected if Errors lists NoError and Unknown
// otherwise (the run may have ended first); a negative bound or detection time gives Unknown. An
// error outside Errors gives Unexpected. Otherwise, with a timing prediction,
// the observation interval [observed-bound, observed+bound] must lie within
// [Detect-allowed, Detect+allowed] for Expected; if it lies wholly outside the
// verdict is Unexpected, and if it straddles an edge, Unknown.
func (e Expectation) Check(observedErr string, observedDetect, bound time.Duration) Result {
	obs := fmt.Sprintf("observed %s at %s ± %s", observedErr, secs(observedDetect), secs(bound))
	if observedErr == "" {
		if slices.Contains(e.Errors, NoError) {
			return Result{Expected, fmt.Sprintf("no error observed, as expected (%s)", e.Reason)}
		}
		return Result{Unknown, fmt.Sprintf("no error observed; expected %s (%s)", e.errs(), e.Reason)}
	}
	if bound < 0 || observedDetect < 0 {
		return Result{Unknown, obs + ": negative time or bound, cannot compare"}
	}
	if len(e.Errors) > 0 && !slices.ContainsFunc(e.Errors, func(s string) bool { return strings.EqualFold(s, observedErr) }) {
		return Result{Unexpected, fmt.Sprintf("%s; expected %s (%s)", obs, e.errs(), e.Reason)}
	}
	if e.Detect == 0 {
		return Result{Expected, fmt.Sprintf("%s; expected %s, no timing predicted (%s)", obs, e.errs(), e.Reason)}
	}
	allowed := e.Tol.Allowed(e.Detect)
	lo, hi := e.Detect-allowed, e.Detect+allowed
	pred := fmt.Sprintf("predicted %s tolerance ±%s (%s) (%s)", secs(e.Detect), secs(allowed), e.Tol, e.Reason)
	switch {
	case observedDetect-bound >= lo && observedDetect+bound <= hi:
		return Result{Expected, fmt.Sprintf("%s; %s: within", obs, pred)}
	case observedDetect+bound < lo || observedDetect-bound > hi:
		return Result{Unexpected, fmt.Sprintf("%s; %s: off by %s", obs, pred, secs(observedDetect-e.Detect))}
	}
	return Result{Unknown, fmt.Sprintf("%s; %s: measurement uncertainty straddles the tolerance edge", obs, pred)}
}

// errs renders the acceptable error names.
func (e Expectation) errs() string {
	if len(e.Errors) == 0 {
		return "any error"
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
