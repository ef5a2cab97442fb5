package timeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newTimeline(t *testing.T) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	w, err := Create(path, t0, map[string]string{"run": "r1"})
	if err != nil {
		t.Fatal(err)
	}
	return w, path
}

func TestWriterRoundTrip(t *testing.T) {
	w, path := newTimeline(t)
	e, err := NewEvent(SrcClient, "read_err", t0.Add(time.Second), map[string]string{"err": "ETIMEDOUT"})
	if err != nil {
		t.Fatal(err)
	}
	e.UncertNS, e.MonoNS = 1500, 77
	for _, e := range []Event{FaultStart("poweroff", t0.Add(time.Millisecond)), e} {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(t0.Add(2*time.Second), true, ""); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].Ev != EvTimelineStart || got[3].Ev != EvTimelineEnd {
		t.Fatalf("read %d events: %+v", len(got), got)
	}
	if string(got[0].Data) != `{"run":"r1"}` || got[0].HostNS != t0.UnixNano() {
		t.Errorf("header %+v", got[0])
	}
	var d struct{ Err string }
	if err := got[2].DecodeData(&d); err != nil || d.Err != "ETIMEDOUT" || got[2].UncertNS != 1500 || got[2].MonoNS != 77 {
		t.Errorf("event %+v, data %+v, %v", got[2], d, err)
	}
	if complete, reason := Completion(got); !complete || reason != "" {
		t.Errorf("Completion = %v, %q", complete, reason)
	}
	raw, _ := os.ReadFile(path)
	first := strings.SplitN(string(raw), "\n", 2)[0]
	if !strings.HasPrefix(first, `{"v":1,"src":"host","ev":"timeline_start","host_ns":`) {
		t.Errorf("header line %s", first)
	}
}

func TestWriterIncomplete(t *testing.T) {
	w, path := newTimeline(t)
	if err := w.Close(t0, false, "server never came back"); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	complete, reason := Completion(got)
	if complete || reason != "server never came back" {
		t.Errorf("Completion = %v, %q", complete, reason)
	}
	if err := w.Write(ev(SrcClient, "late", 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := w.Close(t0, true, ""); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := Create(path, t0, nil); err == nil {
		t.Error("Create over an existing timeline succeeded")
	}
}

func TestWriterRejectsInvalid(t *testing.T) {
	w, _ := newTimeline(t)
	defer w.Close(t0, false, "test")
	for _, e := range []Event{
		{Src: "guest", Ev: "x"},
		{Src: SrcClient},
		{V: 2, Src: SrcClient, Ev: "x"},
		{Src: SrcClient, Ev: "x", UncertNS: -1},
		{Src: SrcClient, Ev: "x", Data: json.RawMessage(`[1]`)},
	} {
		if err := w.Write(e); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("Write(%+v) = %v, want ErrInvalidEvent", e, err)
		}
	}
}

func TestWriterConcurrent(t *testing.T) {
	w, path := newTimeline(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				e, _ := NewEvent(SrcClient, "write", t0.Add(time.Duration(i)), map[string]int{"g": g, "i": i})
				if err := w.Write(e); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(t0, true, ""); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil || len(got) != 802 {
		t.Fatalf("read %d events, %v; want 802", len(got), err)
	}
}

func TestReadTruncated(t *testing.T) {
	w, path := newTimeline(t)
	for i := range 3 {
		if err := w.Write(ev(SrcClient, fmt.Sprint("e", i), int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Simulate a crash mid-write: no Close, half a line at the end.
	appendTo(t, path, `{"v":1,"src":"client","ev":"wri`)
	got, err := Read(path)
	if !errors.Is(err, ErrTruncated) || len(got) != 4 {
		t.Fatalf("Read = %d events, %v; want 4 and ErrTruncated", len(got), err)
	}
	if complete, reason := Completion(got); complete || !strings.Contains(reason, "no timeline_end") {
		t.Errorf("Completion = %v, %q", complete, reason)
	}
}

func TestReadLastLineWithoutNewline(t *testing.T) {
	_, path := newTimeline(t)
	appendTo(t, path, `{"v":1,"src":"client","ev":"write","host_ns":5,"uncert_ns":0}`)
	got, err := Read(path)
	if err != nil || len(got) != 2 {
		t.Errorf("Read = %d events, %v; want 2, nil", len(got), err)
	}
}

func TestReadCorrupt(t *testing.T) {
	_, path := newTimeline(t)
	appendTo(t, path, "not json\n"+`{"v":1,"src":"client","ev":"write","host_ns":5,"uncert_ns":0}`+"\n")
	got, err := Read(path)
	if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated) || len(got) != 1 {
		t.Errorf("Read = %d events, %v; want 1 and ErrCorrupt", len(got), err)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Read of a missing file succeeded")
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
