package report

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab/scenario"
	"github.com/hostlab/hostlab/lab/timeline"
)

// Host events of a run's timeline that the report reads besides the
// reserved ones (lab/scenario writes them).
const (
	evServerBack = "server_back"
	evClientExit = "client_exit"
	evPaused     = "paused"
	evKilled     = "killed"
)

// wireFile is the client's own capture in a run folder.
const wireFile = "client.wire.pcap"

// runTimeline reads a run's folder and returns its timeline data, noting
// what could not be read.
func runTimeline(r *Run) Timeline {
	var res *scenario.Result
	if r.HasResult {
		res = &r.Result
	}
	var ev *scenario.Evidence
	var notes []string
	if r.Dir != "" {
		var err error
		ev, _, err = scenario.LoadEvidence(r.Dir)
		if err == nil && ev.Wire == nil && !exists(filepath.Join(r.Dir, wireFile)) {
			ev.WireErr = "no " + wireFile + " in the run folder: the wire is not drawn"
		}
		if err != nil {
			// No result.json, or a timeline cut off: read what the
			// timeline still holds (no wire without result.json).
			var why string
			ev, why = evidenceFromTimeline(r.Dir)
			if why != "" {
				notes = append(notes, why)
			}
		}
	}
	tl := TimelineOf(r.Key(), res, ev, r.BudgetS)
	tl.Notes = append(notes, tl.Notes...)
	return tl
}

// evidenceFromTimeline reads what a run's timeline.jsonl holds, tolerating
// a cut-off last line; it says what it could not read (nil evidence when
// there is nothing).
func evidenceFromTimeline(dir string) (*scenario.Evidence, string) {
	p := filepath.Join(dir, timeline.FileName)
	evs, err := timeline.Read(p)
	var why string
	switch {
	case err == nil:
		if !exists(filepath.Join(dir, "result.json")) {
			why = "no result.json: the client's capture is not read"
		}
	case errors.Is(err, timeline.ErrTruncated):
		why = "timeline.jsonl ends in a torn line (dropped); no result.json: the client's capture is not read"
		if exists(filepath.Join(dir, "result.json")) {
			why = "timeline.jsonl ends in a torn line (dropped); the client's capture is not read"
		}
	case errors.Is(err, os.ErrNotExist):
		return nil, "no timeline.jsonl: the run was interrupted before hostlab merged its timeline"
	default:
		if len(evs) == 0 {
			return nil, "timeline.jsonl unreadable: " + err.Error()
		}
		why = "timeline.jsonl partly unreadable: " + err.Error()
	}
	ev := &scenario.Evidence{}
	for _, e := range evs {
		switch e.Src {
		case timeline.SrcClient:
			var ee echo.Event
			if e.DecodeData(&ee) == nil {
				ev.Client = append(ev.Client, scenario.GuestEvent{Event: ee, At: e.Host(), Uncert: e.Uncert()})
			}
		case timeline.SrcConsoleServer:
			var m scenario.Mark
			if e.DecodeData(&m) == nil {
				m.At, m.Uncert = e.Host(), e.Uncert()
				ev.Marks = append(ev.Marks, m)
			}
		case timeline.SrcHost:
			switch e.Ev {
			case timeline.EvTimelineStart:
				ev.Started = e.Host()
			case timeline.EvFaultStart:
				if ev.FaultStart.IsZero() {
					ev.FaultStart = e.Host()
				}
			case timeline.EvFaultEnd:
				if ev.FaultEnd.IsZero() {
					ev.FaultEnd = e.Host()
				}
			case evPaused, evKilled:
				if ev.FaultAt.IsZero() {
					ev.FaultAt, ev.FaultUncert = e.Host(), e.Uncert()
				}
			case evServerBack:
				ev.ServerBack = e.Host()
			case evClientExit:
				var x scenario.Exit
				if e.DecodeData(&x) == nil {
					x.At = e.Host()
					ev.Exit = &x
				}
			}
		}
	}
	if ev.FaultAt.IsZero() && !ev.FaultStart.IsZero() {
		ev.FaultAt = ev.FaultStart
		ev.FaultUncert = max(ev.FaultEnd.Sub(ev.FaultStart), time.Duration(0))
	}
	return ev, why
}
