package report

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hostlab/hostlab/lab/scenario"
)

// Detection is the data of a scenario × variant's detection plot: one lane
// per kernel, a dot per run at its detection time, against the prediction
// and the budget. Times are seconds after the fault.
type Detection struct {
	Scenario string `json:"scenario"`
	Variant  string `json:"variant"`
	Lanes    []Lane `json:"lanes"`
	// Budget is the largest budget of the figure's cells (nil: none).
	Budget *float64 `json:"budget_s,omitempty"`
	// XMin and XMax bound the plot's time axis.
	XMin float64 `json:"x_min"`
	XMax float64 `json:"x_max"`
}

// Lane is one kernel's runs in a detection plot.
type Lane struct {
	Kernel  string `json:"kernel"`
	Release string `json:"release,omitempty"`
	// Y is the lane's centre on the plot's vertical axis (the first lane
	// on top).
	Y    float64 `json:"y"`
	Dots []Dot   `json:"dots"`
	// Min, Median and Max summarise the dots' times (nil: no dot).
	Min    *float64 `json:"min_s,omitempty"`
	Median *float64 `json:"median_s,omitempty"`
	Max    *float64 `json:"max_s,omitempty"`
	// Nominal is the range of the runs' nominal predictions and Window the
	// envelope of their windows (nil: none).
	Nominal *Range `json:"nominal,omitempty"`
	Window  *Range `json:"window,omitempty"`
	// Undetected counts the runs with no detection time.
	Undetected int `json:"undetected,omitempty"`
}

// Dot is one run in a detection plot, with its own prediction: each run is
// judged against the window its own evidence gives.
type Dot struct {
	Run    string  `json:"run"`
	Rep    int     `json:"rep"`
	Y      float64 `json:"y"`
	T      float64 `json:"t_s"`
	Uncert float64 `json:"uncert_s"`
	Status Status  `json:"status"`
	// Window is the run's predicted window and Nominal its nominal
	// prediction (nil: none).
	Window  *Range   `json:"window,omitempty"`
	Nominal *float64 `json:"nominal_s,omitempty"`
}

// laneHalf is half a lane's height: dots spread within ±laneSpread of the
// lane's centre.
const (
	laneHalf   = 0.4
	laneSpread = 0.25
)

// Detections is the data of f's detection plot.
func Detections(f *Figure) Detection {
	d := Detection{Scenario: f.Scenario, Variant: f.Variant}
	n := len(f.Groups)
	var hi, lo float64
	for i, g := range f.Groups {
		ln := Lane{Kernel: g.Kernel, Release: g.Release, Y: float64(n - 1 - i)}
		var ts []float64
		var dots []*Run
		for _, r := range g.Runs {
			if r.HasResult && r.Observed.DetectS != nil {
				dots = append(dots, r)
			} else {
				ln.Undetected++
			}
		}
		for k, r := range dots {
			t := round6(*r.Observed.DetectS)
			y := ln.Y
			if len(dots) > 1 {
				y -= laneSpread * (2*float64(k)/float64(len(dots)-1) - 1) // The first run on top.
			}
			dt := Dot{Run: r.Key(), Rep: r.Rep, Y: round6(y), T: t, Uncert: round6(r.Observed.DetectPlusS), Status: r.Status}
			if w := r.Expected.Window; w != nil {
				dt.Window = &Range{round6(w.EarliestS), round6(w.LatestS)}
				hi, lo = max(hi, w.LatestS), min(lo, w.EarliestS)
			}
			if r.PredictedS != nil {
				p := round6(*r.PredictedS)
				dt.Nominal = &p
				hi = max(hi, p)
			}
			ln.Dots = append(ln.Dots, dt)
			ts = append(ts, t)
			hi, lo = max(hi, t+r.Observed.DetectPlusS), min(lo, t)
		}
		if len(ts) > 0 {
			slices.Sort(ts)
			mn, md, mx := ts[0], round6(median(ts)), ts[len(ts)-1]
			ln.Min, ln.Median, ln.Max = &mn, &md, &mx
		}
		ln.Nominal, ln.Window = roundRange(g.Predicted()), roundRange(g.Window())
		if g.Budget != nil && (d.Budget == nil || *g.Budget > *d.Budget) {
			b := *g.Budget
			d.Budget = &b
		}
		d.Lanes = append(d.Lanes, ln)
	}
	if d.Budget != nil && *d.Budget <= 3*max(hi, 0.001) {
		hi = max(hi, *d.Budget)
	}
	if hi <= lo {
		hi = lo + 1
	}
	pad := (hi - lo) * 0.05
	d.XMin, d.XMax = round6(min(0, lo-pad)), round6(hi+pad)
	return d
}

// Timeline is the data of one run's timeline plot. Times are seconds from
// the origin, the pinned fault instant (fault_at) where there is one.
type Timeline struct {
	Run string `json:"run"`
	// Origin says what t = 0 is: "fault_at", "fault_start" or "start" (no
	// fault: the run's start).
	Origin string `json:"origin"`
	// Fault is the fault call (fault_start..fault_end) and Pinned the
	// fault instant's ± bound around 0 (nil: not known).
	Fault  *Range `json:"fault,omitempty"`
	Pinned *Range `json:"pinned,omitempty"`
	// Writes and Reads are the client's writes and reads.
	Writes []float64 `json:"writes,omitempty"`
	Reads  []float64 `json:"reads,omitempty"`
	// ClientErrors are the client's errors, EOF and exit as it logged them.
	ClientErrors []Mark `json:"client_errors,omitempty"`
	// Learnt is when the client learnt (observed.detect_s) and its ± bound.
	Learnt *Mark `json:"learnt,omitempty"`
	// Sent is the first transmission of the unacknowledged segment, Probes
	// tail-loss probes, Rungs the RTO retransmissions and the RTO armed
	// after each; LadderFrom says where the rungs come from ("wire",
	// "tcp_info" or "").
	Sent       *float64  `json:"sent,omitempty"`
	TLP        []float64 `json:"tlp,omitempty"`
	Rungs      []Rung    `json:"rungs,omitempty"`
	LadderFrom string    `json:"ladder_from,omitempty"`
	// BaseRTO is the RTO in force before the fault, seconds (0: unknown).
	BaseRTO float64 `json:"base_rto_s,omitempty"`
	// Retrans are retransmissions on the wire not drawn as rungs, and
	// Keepalive the keepalive probes.
	Retrans   []float64 `json:"retrans,omitempty"`
	Keepalive []float64 `json:"keepalive,omitempty"`
	// FromServer are the server's FIN and RST and the ICMP unreachables
	// the client received; Server the server's own steps (console marks,
	// back after a reboot).
	FromServer []Mark `json:"from_server,omitempty"`
	Server     []Mark `json:"server,omitempty"`
	// Window and Nominal are the predicted detection window and nominal
	// instant, Budget the campaign's budget.
	Window  *Range   `json:"window,omitempty"`
	Nominal *float64 `json:"nominal_s,omitempty"`
	Budget  *float64 `json:"budget_s,omitempty"`
	// XMin and XMax bound the time axis; Beyond names what lies past XMax
	// (a prediction far beyond the evidence, e.g. a run hostlab stopped).
	XMin   float64 `json:"x_min"`
	XMax   float64 `json:"x_max"`
	Beyond string  `json:"beyond,omitempty"`
	// Notes say what is missing.
	Notes []string `json:"notes,omitempty"`
}

// Mark is a labelled instant.
type Mark struct {
	T      float64 `json:"t_s"`
	Uncert float64 `json:"uncert_s,omitempty"`
	Label  string  `json:"label"`
}

// Rung is one RTO retransmission: when, and the RTO armed after it.
type Rung struct {
	T   float64 `json:"t_s"`
	RTO float64 `json:"rto_s"`
	// Late is how late its timer fired (nil: not measured).
	Late *float64 `json:"late_s,omitempty"`
}

// TimelineOf is the data of a run's timeline plot, from its result (nil
// when the run recorded none) and its evidence (nil when unreadable).
func TimelineOf(key string, res *scenario.Result, ev *scenario.Evidence, budget *float64) Timeline {
	tl := Timeline{Run: key}
	var origin time.Time
	switch {
	case res != nil && !res.FaultAt.IsZero():
		origin, tl.Origin = res.FaultAt, "fault_at"
		if res.FaultUncertS != nil && pinned(res.FaultAt, ev) {
			tl.Pinned = &Range{round6(-*res.FaultUncertS), round6(*res.FaultUncertS)}
		}
	case ev != nil && !ev.FaultAt.IsZero():
		origin, tl.Origin = ev.FaultAt, "fault_at"
		if pinned(ev.FaultAt, ev) {
			tl.Pinned = &Range{round6(-ev.FaultUncert.Seconds()), round6(ev.FaultUncert.Seconds())}
		}
	default:
		tl.Origin = "start"
		if ev != nil {
			origin = ev.Started
			if origin.IsZero() && len(ev.Client) > 0 {
				origin = ev.Client[0].At
			}
		}
		tl.Notes = append(tl.Notes, "no fault in the timeline: times count from the run's start")
	}
	rel := func(t time.Time) float64 { return round6(t.Sub(origin).Seconds()) }
	if ev == nil {
		tl.Notes = append(tl.Notes, "no evidence readable: only result.json's figures are drawn")
	} else {
		if !ev.FaultStart.IsZero() {
			end := ev.FaultEnd
			if end.IsZero() {
				end = ev.FaultStart
			}
			tl.Fault = &Range{rel(ev.FaultStart), rel(end)}
		}
		for _, e := range ev.Client {
			switch {
			case e.Ev == "write":
				tl.Writes = append(tl.Writes, rel(e.At))
			case e.Ev == "read":
				tl.Reads = append(tl.Reads, rel(e.At))
			case e.Errno != "" || e.Ev == "eof" || e.Ev == "error":
				lbl := e.Errno
				if e.Op != "" {
					lbl = e.Op + ": " + lbl
				}
				tl.ClientErrors = append(tl.ClientErrors, Mark{T: rel(e.At), Uncert: round6(e.Uncert.Seconds()), Label: lbl})
			}
		}
		if ev.Exit != nil && !ev.Exit.At.IsZero() {
			lbl := "client exit"
			if ev.Exit.Signal != "" {
				lbl = "client killed by SIG" + ev.Exit.Signal
			}
			tl.ClientErrors = append(tl.ClientErrors, Mark{T: rel(ev.Exit.At), Label: lbl})
		}
		for _, m := range ev.Marks {
			tl.Server = append(tl.Server, Mark{T: rel(m.At), Uncert: round6(m.Uncert.Seconds()), Label: m.Name})
		}
		if !ev.ServerBack.IsZero() {
			tl.Server = append(tl.Server, Mark{T: rel(ev.ServerBack), Label: "server back"})
		}
		if w := ev.Wire; w != nil {
			if !w.FIN.IsZero() {
				tl.FromServer = append(tl.FromServer, Mark{T: rel(w.FIN), Label: "FIN"})
			}
			if !w.RST.IsZero() {
				tl.FromServer = append(tl.FromServer, Mark{T: rel(w.RST), Label: "RST"})
			}
			for _, p := range w.Probes {
				tl.Keepalive = append(tl.Keepalive, rel(p))
			}
			if res == nil || res.WireLadder == nil {
				for _, t := range w.Retrans {
					tl.Retrans = append(tl.Retrans, rel(t))
				}
			}
			if !w.Sent.IsZero() {
				s := rel(w.Sent)
				tl.Sent = &s
			}
		} else if ev.WireErr != "" {
			tl.Notes = append(tl.Notes, "wire: "+ev.WireErr)
		}
		for _, ic := range ev.ICMP {
			if t := rel(ic.At); t >= 0 {
				tl.FromServer = append(tl.FromServer, Mark{T: t, Label: "ICMP unreachable"})
			}
		}
		slices.SortStableFunc(tl.FromServer, func(a, b Mark) int { return cmpFloat(a.T, b.T) })
		slices.SortStableFunc(tl.Server, func(a, b Mark) int { return cmpFloat(a.T, b.T) })
	}
	if res != nil {
		tl.ladder(res, rel, !origin.IsZero())
		if res.Observed.DetectS != nil {
			lbl := res.Observed.Error
			if lbl == "" {
				lbl = "learnt"
			}
			tl.Learnt = &Mark{T: round6(*res.Observed.DetectS), Uncert: round6(res.Observed.DetectPlusS), Label: lbl}
		}
		if w := res.Expected.Window; w != nil {
			tl.Window = &Range{round6(w.EarliestS), round6(w.LatestS)}
		}
		if res.PredictedS != nil {
			p := round6(*res.PredictedS)
			tl.Nominal = &p
		}
	}
	tl.Budget = budget
	tl.bounds()
	return tl
}

// pinned reports whether the fault instant at was pinned within the fault
// call (a power cut's pause, a kill between two guest stamps) rather than
// taken as the call's start, whose bound is then the call itself, drawn
// already.
func pinned(at time.Time, ev *scenario.Evidence) bool {
	return ev == nil || ev.FaultStart.IsZero() || !ev.FaultStart.Equal(at)
}

// ladder fills the retransmission ladder: from the wire where the verdict
// measured one (and the origin is known: the wire's times are absolute),
// else from the TCP_INFO changes (each rise of retransmits).
func (tl *Timeline) ladder(res *scenario.Result, rel func(time.Time) float64, absolute bool) {
	if l := res.WireLadder; l != nil && len(l.Rungs) > 0 && absolute {
		tl.LadderFrom, tl.BaseRTO = "wire", round6(l.Base.Seconds())
		s := rel(l.Sent)
		tl.Sent = &s
		tl.TLP = nil
		for _, p := range l.Probes {
			tl.TLP = append(tl.TLP, rel(p))
		}
		for i, r := range l.Rungs {
			rg := Rung{T: rel(r.At), RTO: round6(r.Armed.Seconds())}
			if i < len(l.Late) {
				late := round6(l.Late[i].Seconds())
				rg.Late = &late
			}
			tl.Rungs = append(tl.Rungs, rg)
		}
		return
	}
	prev := -1
	for _, s := range res.Ladder {
		if prev >= 0 && s.Retransmits > prev && s.RTOms > 0 {
			tl.Rungs = append(tl.Rungs, Rung{T: round6(s.T), RTO: round6(s.RTOms / 1000)})
		}
		if prev < 0 && s.RTOms > 0 {
			tl.BaseRTO = round6(s.RTOms / 1000)
		}
		prev = s.Retransmits
	}
	if len(tl.Rungs) > 0 {
		tl.LadderFrom = "tcp_info"
	}
}

// bounds sets the time axis: from just before the last write before the
// fault (or the unacknowledged segment's send) to past the last thing
// drawn.
func (tl *Timeline) bounds() {
	lo, hi := -0.5, 0.5
	if tl.Fault != nil {
		lo, hi = min(lo, tl.Fault.Lo), max(hi, tl.Fault.Hi)
	}
	var before []float64
	for _, w := range tl.Writes {
		if w <= 0 {
			before = append(before, w)
		}
	}
	if n := len(before); n > 0 {
		lo = min(lo, before[n-1])
	}
	if tl.Sent != nil {
		lo = min(lo, *tl.Sent)
	}
	see := func(ts ...float64) {
		for _, t := range ts {
			if t >= lo {
				hi = max(hi, t)
			}
		}
	}
	see(tl.Writes...)
	see(tl.Reads...)
	see(tl.TLP...)
	see(tl.Retrans...)
	see(tl.Keepalive...)
	for _, ms := range [][]Mark{tl.ClientErrors, tl.FromServer} {
		for _, m := range ms {
			see(m.T)
		}
	}
	if tl.Learnt != nil {
		see(tl.Learnt.T + tl.Learnt.Uncert)
	}
	for _, r := range tl.Rungs {
		see(r.T)
	}
	// The prediction, the server's steps and the budget widen the axis only
	// when they are near the evidence: a prediction far past a run hostlab
	// stopped, or a server booted again after the run, would squash it.
	core := hi
	near := func(t float64) bool { return t <= max(3*core, core+5) }
	if w := tl.Window; w != nil {
		if near(w.Hi) {
			see(w.Lo, w.Hi)
		} else {
			tl.Beyond = fmt.Sprintf("predicted %s–%s →", secs(w.Lo), secs(w.Hi))
		}
	}
	if n := tl.Nominal; n != nil {
		if near(*n) {
			see(*n)
		} else if tl.Beyond == "" {
			tl.Beyond = fmt.Sprintf("predicted %s →", secs(*n))
		}
	}
	core = hi
	for _, m := range tl.Server {
		if m.T <= 1.5*core {
			see(m.T)
		}
	}
	if tl.Budget != nil && *tl.Budget <= 1.5*core {
		see(*tl.Budget)
	}
	span := hi - lo
	tl.XMin, tl.XMax = round6(lo-0.04*span), round6(hi+0.04*span)
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

func roundRange(r *Range) *Range {
	if r == nil {
		return nil
	}
	return &Range{round6(r.Lo), round6(r.Hi)}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
