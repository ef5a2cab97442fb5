package scenario

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab/model"
)

// persistLadder is a window-probe ladder as the kernel runs it against a
// live peer that answers at most one probe per 500 ms: base 204 ms, so the
// second probe (410 ms after the first) goes unanswered.
func persistLadder(p1 time.Time) PersistCase {
	return PersistCase{Closed: p1.Add(-210 * ms), Base: 204 * ms, Retries2: 15, RateLimit: 500 * ms, HZ: 250,
		Probes:  offsets(p1, 0, 410*ms, 1230*ms, 2870*ms),
		Answers: []time.Time{p1.Add(2 * ms), {}, p1.Add(1232 * ms), p1.Add(2872 * ms)}}
}

func TestPersistUserTimeout(t *testing.T) {
	p1 := time.Unix(1796322000, 0)
	c := persistLadder(p1)
	c.UserTimeout = 5 * time.Second
	c.End = p1.Add(5050 * ms) // The client's report.
	o, err := kernelPersist(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Errors, []string{model.ETIMEDOUT}) || o.Span == nil || o.Span.Nominal != p1.Add(5*time.Second) {
		t.Fatalf("outcome %+v, want ETIMEDOUT at the first probe + 5 s", o)
	}
	for _, ch := range o.Checks {
		if ch.Verdict != model.Expected {
			t.Errorf("check: %s", ch.Why)
		}
	}
	// Lateness: probe 2 from probe 1's answer + 408 ms; probe 3 from
	// probe 2 itself (unanswered) + 816 ms; probe 4 from probe 3's answer
	// + 1632 ms.
	want := []time.Duration{0, 4 * ms, 6 * ms}
	if !slices.Equal(o.Late, want) {
		t.Errorf("lateness %v, want %v", o.Late, want)
	}
	// The pre-5.11 model lets the answered probes live on.
	w, err := WrongPersistUTAnswered.Persist(c)
	if err != nil || !slices.Equal(w.Errors, []string{model.NoError}) {
		t.Errorf("pre-5.11 model: %+v, %v; want no error", w, err)
	}
	// A probe after the user timeout contradicts the rule.
	c.Probes = append(c.Probes, p1.Add(6*time.Second))
	c.Answers = append(c.Answers, time.Time{})
	if _, err := kernelPersist(c); !errors.Is(err, errContradicted) {
		t.Errorf("probe past the user timeout: %v", err)
	}
}

func TestPersistNeverWithoutUserTimeout(t *testing.T) {
	p1 := time.Unix(1796322000, 0)
	c := persistLadder(p1)
	c.Retries2 = 3
	c.End = p1.Add(4 * time.Second)
	o, err := kernelPersist(c)
	if err != nil || !slices.Equal(o.Errors, []string{model.NoError}) || o.Span != nil {
		t.Fatalf("no user timeout: %+v, %v; want no error", o, err)
	}
	// Counting answered probes too, tcp_retries2=3 ends it at the firing
	// after the third probe (1.230 + 1.632 s), before the evidence ends.
	w, err := WrongPersistProbeCount.Persist(PersistCase{Closed: c.Closed, Base: c.Base, Retries2: 3, RateLimit: c.RateLimit, HZ: 250,
		Probes: c.Probes[:3], Answers: c.Answers[:3], End: c.End})
	if err != nil || !slices.Equal(w.Errors, []string{model.ETIMEDOUT}) {
		t.Errorf("count model: %+v, %v; want ETIMEDOUT", w, err)
	}
	// Probes answered where the rate limit forbids it are a finding.
	c.Answers[1] = p1.Add(412 * ms)
	if o, _ := kernelPersist(c); !slices.ContainsFunc(o.Checks, func(r model.Result) bool { return r.Verdict == model.Unexpected }) {
		t.Errorf("rate limit ignored: %+v", o.Checks)
	}
	// A probe before its timer could fire is a finding too.
	c = persistLadder(p1)
	c.Probes[2] = p1.Add(700 * ms)
	c.End = p1.Add(4 * time.Second)
	if o, _ := kernelPersist(c); !slices.ContainsFunc(o.Checks, func(r model.Result) bool {
		return r.Verdict == model.Unexpected && strings.Contains(r.Why, "before their timer")
	}) {
		t.Errorf("early probe: %+v", o.Checks)
	}
}

// TestHangServerSurvives: without a user timeout hostlab's own stop after
// the watch period is the expected outcome, not an unknown.
func TestHangServerSurvives(t *testing.T) {
	s, _ := Lookup("hang-server")
	f := time.Unix(1796322000, 0)
	c := persistLadder(f.Add(2 * time.Second))
	var segs []Segment
	una := uint32(5000)
	segs = append(segs, Segment{At: f.Add(1790 * ms), Seq: 900, Ack: una, Flags: tcpACK, Win: 0})
	for i, p := range c.Probes {
		segs = append(segs, Segment{At: p, Out: true, Seq: una - 1, Ack: 900, Flags: tcpACK, Win: 500})
		if !c.Answers[i].IsZero() {
			segs = append(segs, Segment{At: c.Answers[i], Seq: 900, Ack: una, Flags: tcpACK, Win: 0})
		}
	}
	ev := &Evidence{Scenario: "hang-server", FaultStart: f, FaultEnd: f.Add(20 * ms), FaultAt: f.Add(10 * ms), FaultUncert: 10 * ms,
		Stopped: f.Add(60 * time.Second), Exit: &Exit{Signal: "KILL", ByHostlab: true, At: f.Add(60100 * ms)},
		Sysctls: map[string]map[string]string{"client": {"net.ipv4.tcp_retries2": "15"}, "server": {"net.ipv4.tcp_invalid_ratelimit": "500"}},
		Client: []GuestEvent{
			{Event: echo.Event{Ev: "connect", Local: "192.168.77.1:40000", Peer: "192.168.77.2:9998", Sockopts: &echo.Sockopts{}}, At: f.Add(-5 * time.Second)},
			{Event: echo.Event{Ev: "tcp_info", TCPInfo: &echo.TCPInfo{State: "ESTABLISHED", RTOus: 204000}}, At: f.Add(time.Second)},
		},
		Wire: &Wire{Segments: segs}}
	d := Judge(s, ev, Kernel)
	if d.Verdict != model.Expected || !strings.Contains(d.Why, "no error observed, as expected") {
		t.Fatalf("survived the watch: %v %s", d.Verdict, d.Why)
	}
	// The wrong count model expects ETIMEDOUT: hostlab's stop before it
	// is unknown only because the model never fires within the watch.
	ev.Sysctls["client"]["net.ipv4.tcp_retries2"] = "3"
	if d := Judge(s, ev, WrongPersistProbeCount); d.Verdict == model.Expected {
		t.Errorf("count model on a surviving client: %v %s", d.Verdict, d.Why)
	}
	// Without a capture there is no prediction.
	ev.Wire = nil
	if d := Judge(s, ev, Kernel); d.Verdict != model.Unknown {
		t.Errorf("no capture: %v %s", d.Verdict, d.Why)
	}
}
