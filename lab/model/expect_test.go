package model

import (
	"strings"
	"testing"
	"time"
)

func TestExpectationCheck(t *testing.T) {
	s := time.Second
	// Window 14.024 .. 14.828 s with 10 ms of anchor slack: accepted are
	// observations that meet 14.014 .. 14.838 s.
	e := Expectation{Errors: []string{ETIMEDOUT, EHOSTUNREACH}, Reason: "tcp_retries2=5",
		Window: &Window{Earliest: 14024 * ms, Latest: 14828 * ms, Nominal: 14320 * ms, Slack: 10 * ms, Basis: "ladder"}}
	tests := []struct {
		name   string
		err    string
		at     time.Duration
		bound  time.Duration
		want   Verdict
		phrase string
	}{
		{"inside", ETIMEDOUT, 14400 * ms, 10 * ms, Expected, "within"},
		{"other listed errno", EHOSTUNREACH, 14100 * ms, 0, Expected, "within"},
		{"errno case-insensitive", "etimedout", 14100 * ms, 0, Expected, "within"},
		{"late within its own bound", ETIMEDOUT, 14840 * ms, 5 * ms, Expected, "within"},
		{"too late", ETIMEDOUT, 15 * s, 10 * ms, Unexpected, "0.152 s too late"},
		{"before the kernel could act", ETIMEDOUT, 13 * s, 10 * ms, Unexpected, "1.004 s too early"},
		{"wrong errno", ECONNRESET, 14 * s, 0, Unexpected, "expected ETIMEDOUT or EHOSTUNREACH"},
		{"nothing observed", "", 0, 0, Unknown, "no error observed"},
		{"negative bound", ETIMEDOUT, 14 * s, -1, Unknown, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.Check(tt.err, tt.at, tt.bound)
			if r.Verdict != tt.want || !strings.Contains(r.Why, tt.phrase) {
				t.Errorf("Check = %v %q; want %v containing %q", r.Verdict, r.Why, tt.want, tt.phrase)
			}
		})
	}
}

func TestExpectationNoTiming(t *testing.T) {
	e := Expectation{Errors: []string{ECONNRESET}, Reason: "server rebooted"}
	if r := e.Check(ECONNRESET, 99*time.Second, time.Second); r.Verdict != Expected {
		t.Errorf("Check = %v %q, want expected", r.Verdict, r.Why)
	}
	if r := e.Check(EOF, time.Second, 0); r.Verdict != Unexpected {
		t.Errorf("other error: %v %q, want unexpected", r.Verdict, r.Why)
	}
}

// TestExpectationMissingIsUnknown: an expectation without a prediction
// passes nothing.
func TestExpectationMissingIsUnknown(t *testing.T) {
	for _, e := range []Expectation{
		{Reason: "no outcome named", Window: &Window{Earliest: time.Second, Latest: 2 * time.Second}},
		{Errors: []string{ETIMEDOUT}, Missing: "client tcp_retries2 unknown"},
		{},
	} {
		for _, obs := range []string{ECONNRESET, ETIMEDOUT, EOF} {
			if r := e.Check(obs, 1500*time.Millisecond, 0); r.Verdict != Unknown || !strings.Contains(r.Why, "no prediction") {
				t.Errorf("%+v observing %s: %v %q, want unknown", e, obs, r.Verdict, r.Why)
			}
		}
	}
}

func TestExpectationNoError(t *testing.T) {
	d, err := DetectDeadPeer(DeadPeer{})
	if err != nil {
		t.Fatal(err)
	}
	e := d.Expectation()
	if r := e.Check("", 0, 0); r.Verdict != Expected {
		t.Errorf("nothing observed: %v %q", r.Verdict, r.Why)
	}
	if r := e.Check(ETIMEDOUT, time.Minute, 0); r.Verdict != Unexpected {
		t.Errorf("ETIMEDOUT observed: %v %q", r.Verdict, r.Why)
	}
}

func TestCombineResults(t *testing.T) {
	r := CombineResults(Result{Expected, "a"}, Result{Unknown, "b"}, Result{Unknown, "c"})
	if r.Verdict != Unknown || r.Why != "b; c" {
		t.Errorf("CombineResults = %+v", r)
	}
	if r := CombineResults(); r.Verdict != Unknown {
		t.Errorf("CombineResults() = %+v", r)
	}
}
