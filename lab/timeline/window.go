package timeline

import (
	"cmp"
	"slices"
	"time"
)

// faultData is the data of fault_start and fault_end events.
type faultData struct {
	Name string `json:"name"`
}

// FaultStart is the host event that opens the fault window name at at.
func FaultStart(name string, at time.Time) Event {
	return faultEvent(EvFaultStart, name, at)
}

// FaultEnd is the host event that closes the fault window name at at.
func FaultEnd(name string, at time.Time) Event {
	return faultEvent(EvFaultEnd, name, at)
}

// faultEvent builds a fault marker; marshalling a one-string struct cannot fail.
func faultEvent(ev, name string, at time.Time) Event {
	e, _ := NewEvent(SrcHost, ev, at, faultData{Name: name})
	return e
}

// Window is the span of one fault, for shading plots.
type Window struct {
	// Name is the fault's name.
	Name string `json:"name"`
	// StartNS is the host time of the fault_start event.
	StartNS int64 `json:"start_ns"`
	// EndNS is the host time of the fault_end event.
	EndNS int64 `json:"end_ns"`
	// Complete is false when the start or the end is missing; the missing
	// side is then the first or last event time of the timeline.
	Complete bool `json:"complete"`
}

// Windows pairs fault_start and fault_end events by name in time order, each
// end closing the oldest open window of its name, and returns the windows
// sorted by start. Unmatched ends and starts give incomplete windows.
func Windows(events []Event) []Window {
	if len(events) == 0 {
		return nil
	}
	evs := Merge(events)
	first, last := evs[0].HostNS, evs[len(evs)-1].HostNS
	open := map[string][]int{} // name -> indexes into out, oldest first
	var out []Window
	for _, e := range evs {
		if e.Src != SrcHost || (e.Ev != EvFaultStart && e.Ev != EvFaultEnd) {
			continue
		}
		var d faultData
		_ = e.DecodeData(&d) // a nameless marker pairs under ""
		if e.Ev == EvFaultStart {
			open[d.Name] = append(open[d.Name], len(out))
			out = append(out, Window{Name: d.Name, StartNS: e.HostNS, EndNS: last})
			continue
		}
		if q := open[d.Name]; len(q) > 0 {
			out[q[0]].EndNS, out[q[0]].Complete = e.HostNS, true
			open[d.Name] = q[1:]
			continue
		}
		out = append(out, Window{Name: d.Name, StartNS: first, EndNS: e.HostNS})
	}
	slices.SortStableFunc(out, func(a, b Window) int {
		return cmp.Or(cmp.Compare(a.StartNS, b.StartNS), cmp.Compare(a.Name, b.Name))
	})
	return out
}
