package timeline

import (
	"slices"
	"testing"
	"time"
)

func TestWindows(t *testing.T) {
	at := func(ns int64) time.Time { return time.Unix(0, ns) }
	events := Merge([]Event{
		ev(SrcHost, EvTimelineStart, 0),
		FaultStart("poweroff", at(10)),
		FaultStart("partition", at(15)), // overlaps poweroff
		FaultEnd("poweroff", at(20)),
		FaultEnd("partition", at(40)),
		FaultStart("poweroff", at(50)), // same name again
		FaultEnd("poweroff", at(60)),
		FaultEnd("kill", at(70)),    // end without start
		FaultStart("reset", at(80)), // start without end
		ev(SrcClient, "write", 90),
		ev(SrcHost, EvTimelineEnd, 100),
	})
	want := []Window{
		{Name: "kill", StartNS: 0, EndNS: 70},
		{Name: "poweroff", StartNS: 10, EndNS: 20, Complete: true},
		{Name: "partition", StartNS: 15, EndNS: 40, Complete: true},
		{Name: "poweroff", StartNS: 50, EndNS: 60, Complete: true},
		{Name: "reset", StartNS: 80, EndNS: 100},
	}
	if got := Windows(events); !slices.Equal(got, want) {
		t.Errorf("Windows =\n%+v\nwant\n%+v", got, want)
	}
	if got := Windows(nil); got != nil {
		t.Errorf("Windows(nil) = %v", got)
	}
}

func TestFaultEvents(t *testing.T) {
	e := FaultStart("poweroff", time.Unix(0, 5))
	if e.Src != SrcHost || e.Ev != EvFaultStart || e.HostNS != 5 || string(e.Data) != `{"name":"poweroff"}` {
		t.Errorf("FaultStart = %+v", e)
	}
	if err := e.Validate(); err != nil {
		t.Error(err)
	}
}
