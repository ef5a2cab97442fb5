package model

import (
	"strings"
	"testing"
	"time"
)

func TestExpectationCheck(t *testing.T) {
	s := time.Second
	// Predicted 14.072 s, tolerance 0.5 s + 2% = 0.5 + 0.28144 = 0.78144 s,
	// so the window is 13.29056 .. 14.85344 s.
	e := Expectation{Errors: []string{ETIMEDOUT, EHOSTUNREACH}, Reason: "tcp_retries2=5", Detect: 14072 * ms, Tol: Tolerance{Abs: 500 * ms, Pct: 2}}
	tests := []struct {
		name   string
		err    string
		at     time.Duration
		bound  time.Duration
		want   Verdict
		phrase string
	}{
		{"inside", ETIMEDOUT, 14400 * ms, 10 * ms, Expected, "within"},
		{"other listed errno", EHOSTUNREACH, 14 * s, 0, Expected, "within"},
		{"errno case-insensitive", "etimedout", 14 * s, 0, Expected, "within"},
		{"too late", ETIMEDOUT, 15 * s, 10 * ms, Unexpected, "off by 0.928 s"},
		{"too early", ETIMEDOUT, 13 * s, 10 * ms, Unexpected, "off by -1.072 s"},
		{"straddles upper edge", ETIMEDOUT, 14850 * ms, 100 * ms, Unknown, "straddles"},
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
	free := Expectation{Reason: "anything goes", Detect: time.Second}
	if r := free.Check(EOF, time.Second, 0); r.Verdict != Expected {
		t.Errorf("unconstrained errors: %v %q", r.Verdict, r.Why)
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

func TestToleranceAllowed(t *testing.T) {
	tol := Tolerance{Abs: 50 * ms, Pct: 1}
	// 50 ms + 1% of 120 s = 50 ms + 1.2 s.
	if got := tol.Allowed(120 * time.Second); got != 1250*ms {
		t.Errorf("Allowed = %v, want 1.25s", got)
	}
	if got := tol.String(); got != "0.050 s + 1%" {
		t.Errorf("String = %q", got)
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
