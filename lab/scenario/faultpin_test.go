package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab/timeline"
)

func TestFaultInstantUnpinnedIsTheCallStart(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &Run{faultStart: t0, faultEnd: t0.Add(1600 * time.Millisecond)}
	at, unc, what := r.faultInstant()
	if !at.Equal(t0) || unc != 1600*time.Millisecond || !strings.Contains(what, "fault call") {
		t.Fatalf("faultInstant = %v, %v, %q; want the call's start and its whole duration", at.Sub(t0), unc, what)
	}
	if !r.faultAt().Equal(t0) {
		t.Fatalf("faultAt = %v, want the call's start", r.faultAt().Sub(t0))
	}
}

func TestPinFaultNarrowsTheInstant(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &Run{faultStart: t0, faultEnd: t0.Add(1600 * time.Millisecond)}
	from, to := t0.Add(2*time.Millisecond), t0.Add(9*time.Millisecond)
	r.pinFault("paused", from, to, "the pause", map[string]any{"pause_ms": 7.0})
	at, unc, what := r.faultInstant()
	if want := t0.Add(5500 * time.Microsecond); !at.Equal(want) || unc != 3500*time.Millisecond/1000 || what != "the pause" {
		t.Fatalf("faultInstant = %v ± %v (%q); want the window's middle 5.5 ms ± 3.5 ms", at.Sub(t0), unc, what)
	}
	if !r.faultAt().Equal(at) {
		t.Fatalf("faultAt %v differs from faultInstant %v", r.faultAt(), at)
	}
	if len(r.host) != 1 {
		t.Fatalf("host events %+v, want the paused event", r.host)
	}
	e := r.host[0]
	var d struct {
		FromNS  int64   `json:"from_ns"`
		ToNS    int64   `json:"to_ns"`
		PauseMS float64 `json:"pause_ms"`
	}
	if err := e.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	if e.Src != timeline.SrcHost || e.Ev != "paused" || !e.Host().Equal(at) || e.Uncert() != unc ||
		d.FromNS != from.UnixNano() || d.ToNS != to.UnixNano() || d.PauseMS != 7 {
		t.Fatalf("paused event %+v (data %+v), want it at the window's middle with the window", e, d)
	}
}

func TestParseKillStamps(t *testing.T) {
	cases := []struct {
		out           string
		before, after int64
		ok            bool
	}{
		{"stamps 100 250\n", 100, 250, true},
		{"renice: noise\nstamps 100 100\n", 100, 100, true},
		{"stamps  250\n", 0, 0, false}, // the first read failed
		{"stamps 250 100\n", 250, 100, false},
		{"", 0, 0, false},
	}
	for _, c := range cases {
		b, a, ok := parseKillStamps(c.out)
		if ok != c.ok || (ok && (b != c.before || a != c.after)) {
			t.Errorf("parseKillStamps(%q) = %d, %d, %v; want %d, %d, %v", c.out, b, a, ok, c.before, c.after, c.ok)
		}
	}
	if s := killScript(4242); strings.Count(s, "4242") != 3 || !strings.Contains(s, "kill -9 4242") {
		t.Fatalf("killScript(4242) does not target 4242 three times (nice, kill, nice back):\n%s", s)
	}
}
