package model

import (
	"errors"
	"slices"
	"testing"
	"time"
)

const ms = time.Millisecond

// TestPredictAbortEnvironmentRun replays the run measured in
// shared/ENVIRONMENT.md: tcp_retries2=5, peer powered off right after a write,
// ETIMEDOUT 14.4 s after the last ACK, tail loss probe at ~0.22 s, RTO 204 ms.
//
// The note does not give the send time of the unacknowledged write; the echo
// client writes once a second, so it went out ~1.0 s after the last ACK.
// Hand derivation on the last-ACK axis:
//
//	probe          1.000 + 0.220                       = 1.220 s
//	retrans_stamp  1.220 + 0.204                       = 1.424 s
//	expiries       +0.408 +0.816 +1.632 +3.264 (6.120 s elapsed < 12.6)
//	abort          +6.528 -> 12.648 s elapsed >= 12.6  -> 14.072 s
//	lateness       probe 4+20, first RTO 4+20, 408/816/1632 ms 3x(32+20),
//	               3264/6528 ms 2x(256+20)             = 0.756 s -> latest 14.828 s
//
// The ladder in the note continues to 13056 ms; in this model that RTO is
// never armed, because tcp_write_timeout aborts before the backoff.
func TestPredictAbortEnvironmentRun(t *testing.T) {
	p, err := PredictAbort(AbortInput{
		Retries2:         5,
		RTO:              204 * ms,
		Sent:             1000 * ms,
		Probe:            220 * ms,
		ClockUncertainty: 10 * ms,
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Bound != 12600*ms || p.RetransStamp != 1424*ms || p.Abort != 14072*ms {
		t.Errorf("bound %v, retrans_stamp %v, abort %v; want 12.6s, 1.424s, 14.072s", p.Bound, p.RetransStamp, p.Abort)
	}
	if p.Earliest != 14072*ms || p.Latest != 14828*ms {
		t.Errorf("window %v..%v, want 14.072s..14.828s", p.Earliest, p.Latest)
	}
	if p.Retransmissions != 5 {
		t.Errorf("retransmissions %d, want 5", p.Retransmissions)
	}
	var rtos []time.Duration
	for _, tr := range p.Schedule {
		if tr.Kind == "retransmit" {
			rtos = append(rtos, tr.RTO)
		}
	}
	if want := []time.Duration{408 * ms, 816 * ms, 1632 * ms, 3264 * ms, 6528 * ms}; !slices.Equal(rtos, want) {
		t.Errorf("RTO ladder %v, want %v", rtos, want)
	}
	if p.Schedule[0].Kind != "probe" || p.Schedule[0].At != 1220*ms {
		t.Errorf("first event %+v, want probe at 1.22s", p.Schedule[0])
	}
	if p.Slack != 10*ms { // the clock bound
		t.Errorf("slack %v, want 10ms", p.Slack)
	}
	r := p.Expectation().Check(ETIMEDOUT, 14400*ms, 10*ms)
	if r.Verdict != Expected {
		t.Errorf("14.4 s observation: %v: %s", r.Verdict, r.Why)
	}
	t.Log(r.Why)
}

func TestPredictAbort(t *testing.T) {
	tests := []struct {
		name            string
		in              AbortInput
		abort           time.Duration // nominal, on the caller's axis
		earliest        time.Duration
		retransmissions int
	}{
		{
			// Intervals 0.4 .. 102.4 (cum 204.4 s), then 6 x 120 s: the 15th
			// expiry is at 924.4 s, 0.2 s short of 924.6 s, so nominally the
			// 16th (1044.4 s) aborts, but a 0.2 s late chain aborts at the 15th.
			name:  "retries2=15 rto 200ms straddles",
			in:    AbortInput{Retries2: 15, RTO: 200 * ms, RetransStamp: time.Second},
			abort: 1045400 * ms, earliest: 925600 * ms, retransmissions: 16,
		},
		{
			// Intervals 0.408 .. 104.448 (cum 208.488 s), then 120 s each:
			// 808.488 < 924.6 <= 928.488 at the 15th expiry.
			name:  "retries2=15 rto 204ms",
			in:    AbortInput{Retries2: 15, RTO: 204 * ms, RetransStamp: time.Second},
			abort: 929488 * ms, earliest: 929488 * ms, retransmissions: 15,
		},
		{
			// Slow handshake: RTO 3 s, but the bound is still 12.6 s
			// (TCP_RTO_MIN base): 6 s < 12.6 <= 18 s.
			name:  "retries2=5 rto 3s",
			in:    AbortInput{Retries2: 5, RTO: 3 * time.Second, RetransStamp: time.Second},
			abort: 19 * time.Second, earliest: 19 * time.Second, retransmissions: 2,
		},
		{
			// 0.408, 1.224, 2.856, 6.120, then clamped to 10 - 6.12 = 3.88 s.
			name:  "user timeout 10s",
			in:    AbortInput{Retries2: 15, UserTimeout: 10 * time.Second, RTO: 204 * ms, RetransStamp: time.Second},
			abort: 11 * time.Second, earliest: 11 * time.Second, retransmissions: 5,
		},
		{
			// The second timer (408 ms) is clamped to 300 ms.
			name:  "user timeout below first backoff",
			in:    AbortInput{Retries2: 15, UserTimeout: 300 * ms, RTO: 204 * ms, RetransStamp: time.Second},
			abort: 1300 * ms, earliest: 1300 * ms, retransmissions: 1,
		},
		{
			// retries2=0: bound 0.2 s, first expiry after retrans_stamp (0.4 s).
			name:  "retries2=0",
			in:    AbortInput{Retries2: 0, RTO: 200 * ms, Sent: 0},
			abort: 600 * ms, earliest: 600 * ms, retransmissions: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PredictAbort(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if p.Abort != tt.abort || p.Earliest != tt.earliest || p.Retransmissions != tt.retransmissions {
				t.Errorf("abort %v earliest %v retransmissions %d; want %v %v %d",
					p.Abort, p.Earliest, p.Retransmissions, tt.abort, tt.earliest, tt.retransmissions)
			}
			if p.Latest < p.Abort || p.Earliest > p.Abort || p.Earliest < p.RetransStamp+p.Bound {
				t.Errorf("window %v..%v does not bracket abort %v past bound", p.Earliest, p.Latest, p.Abort)
			}
			if got := p.Schedule[len(p.Schedule)-1]; got.Kind != "abort" || got.At != p.Abort {
				t.Errorf("last event %+v, want abort at %v", got, p.Abort)
			}
			if p.Error != ETIMEDOUT {
				t.Errorf("error %q, want ETIMEDOUT", p.Error)
			}
		})
	}
}

func TestPredictAbortLatestLongChain(t *testing.T) {
	// retries2=15, RTO 204 ms, measured retrans_stamp: lateness per timer
	// (slack + 20 ms): 0.408/0.816/1.632 s -> 52 ms each; 3.264/6.528/13.056 s
	// -> 276 ms each; 26.112/52.224/104.448 s and six 120 s -> 2068 ms each.
	// 3*52 + 3*276 + 9*2068 = 19.596 s.
	p, err := PredictAbort(AbortInput{Retries2: 15, RTO: 204 * ms, RetransStamp: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if want := p.Abort + 19596*ms; p.Latest != want {
		t.Errorf("latest %v, want %v", p.Latest, want)
	}
}

func TestPredictAbortSoftError(t *testing.T) {
	p, err := PredictAbort(AbortInput{Retries2: 5, RTO: 204 * ms, SoftError: EHOSTUNREACH})
	if err != nil {
		t.Fatal(err)
	}
	if e := p.Expectation(); !slices.Equal(e.Errors, []string{EHOSTUNREACH}) {
		t.Errorf("errors %v, want EHOSTUNREACH", e.Errors)
	}
}

func TestPredictAbortInvalid(t *testing.T) {
	for _, in := range []AbortInput{
		{Retries2: -1, RTO: 204 * ms},
		{Retries2: 5},
		{Retries2: 5, RTO: 204 * ms, UserTimeout: -1},
		{Retries2: 5, RTO: 204 * ms, Probe: -1},
		{Retries2: 5, RTO: 204 * ms, RTOMax: ms},
		{Retries2: 5, RTO: 204 * ms, ClockUncertainty: -1},
	} {
		if _, err := PredictAbort(in); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("PredictAbort(%+v) error %v, want ErrInvalidInput", in, err)
		}
	}
}

// TestPredictAbortThinLinear: with linear timeouts a thin stream keeps its
// RTO for the first six RTO retransmissions, so tcp_retries2=5 (bound
// 12.6 s) takes more retransmissions, and aborts sooner, than doubling.
func TestPredictAbortThinLinear(t *testing.T) {
	in := AbortInput{Retries2: 5, RTO: 200 * ms, Latency: -1}
	plain, err := PredictAbort(in)
	if err != nil {
		t.Fatal(err)
	}
	in.ThinLinear = true
	thin, err := PredictAbort(in)
	if err != nil {
		t.Fatal(err)
	}
	// Linear: expiries at 0.2 s steps for six rungs (1.2 s), then 0.4,
	// 0.8, 1.6, 3.2, 6.4 s: 13.6 s >= 12.6 s after 11 retransmissions.
	if thin.Retransmissions != 11 || thin.Abort-thin.RetransStamp != 13600*ms {
		t.Errorf("thin: %d retransmissions, abort %v after retrans_stamp; want 11, 13.6s", thin.Retransmissions, thin.Abort-thin.RetransStamp)
	}
	// Doubling from exactly 200 ms: 0.4, 1.2, 2.8, 6.0, 12.4 s (< 12.6 s),
	// so a sixth retransmission and the abort at 25.2 s.
	if plain.Retransmissions != 6 || plain.Abort-plain.RetransStamp != 25200*ms {
		t.Errorf("plain: %d retransmissions, abort %v; want 6, 25.2s", plain.Retransmissions, plain.Abort-plain.RetransStamp)
	}
}
