package scenario

import (
	"fmt"
	"slices"
	"time"

	"github.com/hostlab/hostlab/lab/model"
)

// Judgement is what a scenario's rules make of a run's evidence: the
// expectation the client's observation is checked against, further checks
// of the mechanism (the retransmission count, the instant of the server's
// FIN), and the timer lateness measured on the way.
type Judgement struct {
	// Exp is the expectation for the client's observation.
	Exp model.Expectation
	// Checks are further verdicts on the evidence, combined with the
	// observation's (unexpected beats unknown beats expected).
	Checks []model.Result
	// Late lists the measured lateness of each kernel timer.
	Late []time.Duration
	// Ladder is the measured retransmission ladder, where there is one.
	Ladder *Ladder
	// Kernel, when set, is checked against the window instead of the
	// client's report: the instant the client's kernel ended the
	// connection, which the window models; the program reports it later.
	Kernel *Instant
	// Partition is a partition's account of the cut (partition.go).
	Partition *PartitionReport
}

// Instant is when the client's kernel acted, bracketed by evidence.
type Instant struct {
	// Lo and Hi bracket the instant (equal when a frame on the wire pins it).
	Lo, Hi time.Time
	// Source says what brackets it.
	Source string
	// Act says what the kernel did; empty: it ended the connection.
	Act string
}

// kernelEnd brackets when the client's kernel ended the connection after
// the fault: a RST on the client's wire (the peer's, answered, or the
// client's own at a keepalive abort) pins it; otherwise the client's
// TCP_INFO samples bracket it between the last one still open and the
// first closed. Nil when neither shows it.
func kernelEnd(ev *Evidence) *Instant {
	var lastOpen, firstClosed GuestEvent
	for _, e := range ev.Client {
		if e.TCPInfo == nil || e.At.Before(ev.FaultStart) {
			continue
		}
		if e.TCPInfo.State == "CLOSE" {
			firstClosed = e
			break
		}
		lastOpen = e
	}
	if ev.Wire != nil {
		for _, s := range ev.Wire.Segments {
			if s.Has(tcpRST) && !s.At.Before(ev.FaultStart) && (firstClosed.At.IsZero() || !s.At.After(firstClosed.At.Add(firstClosed.Uncert))) {
				who := "the server's RST"
				if s.Out {
					who = "the client kernel's own RST as it aborted"
				}
				return &Instant{Lo: s.At, Hi: s.At, Source: who + " on the client's wire"}
			}
		}
	}
	if firstClosed.At.IsZero() || lastOpen.At.IsZero() {
		return nil
	}
	return &Instant{Lo: lastOpen.At.Add(-lastOpen.Uncert), Hi: firstClosed.At.Add(firstClosed.Uncert),
		Source: "the client's TCP_INFO samples (last open, first CLOSE)"}
}

// missing is a judgement without a prediction: the verdict is unknown.
func missing(why string) Judgement {
	return Judgement{Exp: model.Expectation{Missing: why}}
}

// Observation is what the client learnt and when.
type Observation struct {
	// Error is the errno name, EOF, SIGPIPE (killed by a signal), or empty
	// when the client learnt nothing.
	Error string `json:"error"`
	// Event is the client event that carried it.
	Event string `json:"event,omitempty"`
	// At is the host time the client learnt it.
	At time.Time `json:"at,omitzero"`
	// Uncert is the ± uncertainty of At.
	Uncert time.Duration `json:"-"`
	// Exit describes how the client process ended.
	Exit string `json:"client_exit,omitempty"`
}

// observation reads the client's first error after the fault. A client
// hostlab itself killed has told nothing.
func (ev *Evidence) observation() Observation {
	var ob Observation
	for _, e := range ev.Client {
		if e.Ev != "eof" && e.Ev != "error" && e.Ev != "read_timeout" {
			continue
		}
		if ev.FaultStart.IsZero() || e.At.Before(ev.FaultStart.Add(-time.Second)) {
			continue // An error before the fault is not the fault's.
		}
		ob.Error, ob.Event, ob.At, ob.Uncert = e.Errno, e.Ev, e.At, e.Uncert
		if e.Ev == "eof" || ob.Error == "" {
			ob.Error = model.EOF
		}
		if e.Ev == "read_timeout" {
			ob.Error = "timeout"
		}
		break
	}
	if x := ev.Exit; x != nil {
		switch {
		case x.ByHostlab:
			ob.Exit = "killed by hostlab when it stopped watching"
		case x.Signal != "":
			ob.Exit = "killed by SIG" + x.Signal
			if ob.Error == "" {
				ob.Error, ob.Event, ob.At, ob.Uncert = "SIG"+x.Signal, "exit_signal", x.At, 50*time.Millisecond
			}
		case x.Lost != "":
			ob.Exit = "lost: " + x.Lost
		default:
			ob.Exit = fmt.Sprintf("exit status %d", x.Status)
		}
	}
	return ob
}

// Decision is a verdict with everything it rests on.
type Decision struct {
	model.Result
	// Rules names the rule set applied.
	Rules string
	// Observation is the client's.
	Observation Observation
	// Judgement is the scenario's.
	Judgement Judgement
	// DetectS and DetectUncert are the detection since the fault and its ±.
	Detect, DetectUncert time.Duration
}

// Judge applies rules k to evidence ev with scenario s: the client's
// observation against the expectation, combined with the scenario's
// further checks. hostlab's own stop before the client learnt anything, a
// missing prediction or missing evidence give Unknown, never a finding.
func Judge(s Scenario, ev *Evidence, k Rules) Decision {
	cp := *ev
	if cp.FaultAt.IsZero() && !cp.FaultStart.IsZero() {
		cp.FaultAt, cp.FaultUncert = ev.FaultStart, ev.FaultEnd.Sub(ev.FaultStart)
	}
	if cp.WritesPerLine == 0 {
		cp.WritesPerLine = s.WritesPerLine
	}
	ev = &cp
	d := Decision{Rules: k.Name, Observation: ev.observation()}
	if d.Observation.Error == "" && s.Survival != nil {
		if sob, ok := s.Survival(ev); ok {
			sob.Exit = d.Observation.Exit
			d.Observation = sob
		}
	}
	ob := d.Observation
	if !ob.At.IsZero() && !ev.FaultStart.IsZero() {
		d.Detect = ob.At.Sub(ev.FaultAt)
		d.DetectUncert = ob.Uncert + ev.FaultUncert
	}
	if ev.FaultStart.IsZero() {
		d.Result = model.Result{Verdict: model.Unknown, Why: "no fault was done"}
		return d
	}
	d.Judgement = s.Expect(ev, k)
	exp := d.Judgement.Exp
	var main model.Result
	switch {
	case ob.Error == "" && !ev.Stopped.IsZero() && !slices.Contains(exp.Errors, model.NoError):
		main = model.Result{Verdict: model.Unknown, Why: fmt.Sprintf(
			"hostlab stopped watching %.3f s after the fault, before the client learnt anything (%s)",
			ev.Stopped.Sub(ev.FaultAt).Seconds(), stopWhy(exp))}
	case d.Judgement.Kernel != nil && ob.Error != "":
		// The window models the kernel; the program reports later, by
		// however long its guest took to run it.
		k := d.Judgement.Kernel
		mid := k.Lo.Add(k.Hi.Sub(k.Lo) / 2)
		main = exp.Check(ob.Error, mid.Sub(ev.FaultAt), k.Hi.Sub(mid))
		act := k.Act
		if act == "" {
			act = "ended the connection"
		}
		main.Why = fmt.Sprintf("the kernel %s at %.3f..%.3f s (%s) and the client reported %s %.3f s later; %s",
			act, k.Lo.Sub(ev.FaultAt).Seconds(), k.Hi.Sub(ev.FaultAt).Seconds(), k.Source, ob.Error, ob.At.Sub(k.Lo).Seconds(), main.Why)
		if ob.At.Add(ob.Uncert).Before(k.Lo) {
			main = model.Result{Verdict: model.Unknown, Why: fmt.Sprintf("the client reported %s before its kernel could have (%s): the evidence is inconsistent", ob.Error, k.Source)}
		}
	default:
		// Windows are on the host axis: a window anchored on the wire or a
		// guest's console carries its own slack, so the fault call's
		// duration enters only windows anchored on the fault itself.
		// The fault instant's own bound enters only windows anchored on it.
		main = exp.Check(ob.Error, d.Detect, ob.Uncert)
	}
	if ob.Error == "" && main.Verdict == model.Unknown {
		// The client learnt nothing: the mechanism's checks see only part of
		// the run, so they inform but do not decide.
		d.Result = main
		for _, c := range d.Judgement.Checks {
			d.Result.Why += "; so far: " + c.Why
		}
		return d
	}
	d.Result = model.CombineResults(append([]model.Result{main}, d.Judgement.Checks...)...)
	if d.Result.Verdict == model.Expected && main.Verdict == model.Expected {
		d.Result.Why = main.Why
		for _, c := range d.Judgement.Checks {
			d.Result.Why += "; " + c.Why
		}
	}
	return d
}

// stopWhy says where the prediction lay when hostlab stopped.
func stopWhy(exp model.Expectation) string {
	if exp.Window == nil {
		return "no timing predicted"
	}
	return fmt.Sprintf("predicted %s", exp.Window)
}

// countCheck compares the number of RTO retransmissions the client made —
// those on the wire, and those TCP_INFO counts that never reached it — with
// the kernel's ladder for the same inputs.
func countCheck(c AbortCase) model.Result {
	l := c.Ladder
	in := model.AbortInput{Retries2: c.Retries2, UserTimeout: c.UserTimeout, RTO: l.Base, ThinLinear: c.Thin, HZ: c.HZ,
		Latency: max(l.MaxLate(), time.Nanosecond)}
	p, err := model.PredictAbort(in)
	if err != nil {
		return model.Result{Verdict: model.Unknown, Why: "retransmission count: no model: " + err.Error()}
	}
	got, queued := len(l.Rungs), 0
	for _, r := range l.Rungs {
		if r.Queued {
			queued++
		}
	}
	what := fmt.Sprintf("%d RTO retransmissions", got)
	if queued > 0 {
		what += fmt.Sprintf(" (%d on the wire, %d queued behind the failed neighbour resolution and never sent)", got-queued, queued)
	} else {
		what += " on the wire"
	}
	if len(l.Probes) > 0 {
		what += fmt.Sprintf(" after %d tail-loss probe(s), which tcpi_total_retrans counts too", len(l.Probes))
	}
	lo, hi := p.MinRetransmissions, p.Retransmissions
	if lo == 0 {
		lo = hi
	}
	switch {
	case got >= lo && got <= hi:
		return model.Result{Verdict: model.Expected, Why: fmt.Sprintf("%s, as the ladder has (%s)", what, countRange(lo, hi))}
	case got > hi && l.Reverts > 0:
		// Each revert re-arms the timer from an undone backoff step: the
		// count is no longer the plain ladder's, the abort stays time-bound.
		return model.Result{Verdict: model.Expected, Why: fmt.Sprintf(
			"%s, more than the plain ladder's %s: %d ICMP backoff reverts (RFC 6069) re-armed the timers while the abort stays time-bounded",
			what, countRange(lo, hi), l.Reverts)}
	}
	return model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf("%s; the kernel's ladder has %s", what, countRange(lo, hi))}
}

func countRange(lo, hi int) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d..%d", lo, hi)
}

// Rejudge loads a run folder and judges it again with rules k, returning
// the result as result.json would record it (the folder is not changed).
func Rejudge(dir string, k Rules) (*Result, error) {
	ev, res, err := LoadEvidence(dir)
	if err != nil {
		return nil, err
	}
	s, err := Lookup(res.Scenario)
	if err != nil {
		return nil, fmt.Errorf("rejudge %s: %w", dir, err)
	}
	res.judge(s, ev, k)
	if !res.Complete {
		res.Verdict, res.Why = model.Unknown, "the run did not complete: "+res.Incomplete
	}
	return res, nil
}
