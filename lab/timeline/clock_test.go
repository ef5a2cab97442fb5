package timeline

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// truth is a synthetic guest clock: guest = G0 + (host - H0)/(1+S).
type truth struct {
	H0, G0 int64
	S      float64
}

func (c truth) guest(host int64) int64 {
	return c.G0 + int64(float64(host-c.H0)/(1+c.S))
}

// synth makes n samples spread over span starting at h0, with round trips
// between 100 µs and 5 ms and the guest reading taken anywhere inside.
func synth(rng *rand.Rand, n int, h0 int64, span time.Duration, real, mono truth) []ClockSample {
	var out []ClockSample
	for i := range n {
		t0 := h0 + int64(span)*int64(i)/int64(max(n-1, 1))
		rtt := int64(100*time.Microsecond) + rng.Int64N(int64(5*time.Millisecond))
		th := t0 + rng.Int64N(rtt+1)
		out = append(out, ClockSample{
			HostSend: time.Unix(0, t0), HostRecv: time.Unix(0, t0+rtt),
			GuestReal: real.guest(th), GuestMono: mono.guest(th),
		})
	}
	return out
}

// checkContains asserts that the fit's bound contains the true host time at
// many points from before the first sample to after the last.
func checkContains(t *testing.T, c Clock, real, mono truth, from, to int64, maxUnc time.Duration) {
	t.Helper()
	step := (to - from) / 50
	for h := from; h <= to; h += step {
		got, unc := c.HostTimeFromMono(mono.guest(h))
		if d := got.UnixNano() - h; absInt64(d) > int64(unc) {
			t.Fatalf("mono at %d: off by %v, bound %v", h-from, time.Duration(d), unc)
		}
		if maxUnc > 0 && unc > maxUnc {
			t.Errorf("mono at %d: bound %v above %v", h-from, unc, maxUnc)
		}
		got, unc = c.HostTimeFromReal(real.guest(h))
		if d := got.UnixNano() - h; absInt64(d) > int64(unc) {
			t.Fatalf("real at %d: off by %v, bound %v", h-from, time.Duration(d), unc)
		}
	}
}

func TestEstimateClockRecoversOffsetAndSkew(t *testing.T) {
	h0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		// Guest realtime 3.7 s ahead and 50 ppm slow; monotonic booted
		// 42 s before h0 and 300 ppm fast.
		real := truth{H0: h0, G0: h0 + int64(3700*time.Millisecond), S: 50e-6}
		mono := truth{H0: h0, G0: int64(42 * time.Second), S: -300e-6}
		samples := synth(rng, 20, h0, time.Minute, real, mono)
		c, err := EstimateClock(samples)
		if err != nil {
			t.Fatal(err)
		}
		// Inside the sampled minute the bound stays near the best half-RTT.
		checkContains(t, c, real, mono, h0, h0+int64(time.Minute), 5*time.Millisecond)
		// Extrapolating a minute either side stays correct, if wider.
		checkContains(t, c, real, mono, h0-int64(time.Minute), h0+int64(2*time.Minute), 0)
		if d := c.Mono.Skew - mono.S; d > c.Mono.SkewBound || d < -c.Mono.SkewBound {
			t.Errorf("seed %d: mono skew %g ± %g, truth %g", seed, c.Mono.Skew, c.Mono.SkewBound, mono.S)
		}
		wantOff := c.Real.GuestRef - c.Real.HostRef // roughly 3.7 s
		if d := time.Duration(wantOff) - c.Real.Offset; d > c.Real.OffsetBound+time.Millisecond || d < -c.Real.OffsetBound-time.Millisecond {
			t.Errorf("seed %d: real offset %v ± %v, midpoint offset %v", seed, c.Real.Offset, c.Real.OffsetBound, time.Duration(wantOff))
		}
		if o := c.Real.Offset; o < 3690*time.Millisecond || o > 3710*time.Millisecond {
			t.Errorf("seed %d: real offset %v, want ~3.7s", seed, o)
		}
	}
}

func TestEstimateClockSingleSample(t *testing.T) {
	h0 := int64(1_764_000_000_000_000_000)
	rng := rand.New(rand.NewPCG(3, 3))
	real := truth{H0: h0, G0: h0 - int64(time.Second), S: 200e-6}
	mono := truth{H0: h0, G0: int64(time.Hour), S: 200e-6}
	c, err := EstimateClock(synth(rng, 1, h0, 0, real, mono))
	if err != nil {
		t.Fatal(err)
	}
	// Skew unknown: assumed 0 and widened by 1000 ppm per unit of distance.
	if c.Mono.Skew != 0 || c.Mono.SkewBound != DefaultMaxSkew {
		t.Errorf("skew %g ± %g, want 0 ± %g", c.Mono.Skew, c.Mono.SkewBound, DefaultMaxSkew)
	}
	checkContains(t, c, real, mono, h0-int64(10*time.Second), h0+int64(10*time.Second), 0)
	_, unc := c.HostTimeFromMono(mono.guest(h0 + int64(10*time.Second)))
	if unc < 10*time.Millisecond || unc > 13*time.Millisecond { // 10 s x 1000 ppm + half RTT
		t.Errorf("bound 10 s away = %v, want 10-13 ms", unc)
	}
}

func TestEstimateClockErrors(t *testing.T) {
	h0 := int64(1_764_000_000_000_000_000)
	ok := func(at int64, real int64) ClockSample {
		return ClockSample{HostSend: time.Unix(0, at), HostRecv: time.Unix(0, at+int64(time.Millisecond)), GuestReal: real, GuestMono: at - h0 + 1}
	}
	tests := []struct {
		name    string
		samples []ClockSample
		maxSkew float64
		want    error
	}{
		{"none", nil, DefaultMaxSkew, ErrNoSamples},
		{"receive before send", []ClockSample{{HostSend: time.Unix(0, h0), HostRecv: time.Unix(0, h0-1), GuestReal: 1, GuestMono: 1}}, DefaultMaxSkew, ErrBadSample},
		{"missing stamps", []ClockSample{{HostSend: time.Unix(0, h0), HostRecv: time.Unix(0, h0)}}, DefaultMaxSkew, ErrBadSample},
		{"bad max skew", []ClockSample{ok(h0, h0)}, 2, ErrBadSample},
		// Guest realtime stepped by 1 s between two samples 10 s apart:
		// that would be a 10% rate difference.
		{"stepped clock", []ClockSample{ok(h0, h0), ok(h0+int64(10*time.Second), h0+int64(11*time.Second))}, DefaultMaxSkew, ErrInconsistent},
		// 300 ppm over 60 s is 18 ms, far beyond 1 ms round trips, but a
		// 100 ppm limit cannot explain it.
		{"skew beyond limit", []ClockSample{ok(h0, h0), ok(h0+int64(time.Minute), h0+int64(time.Minute)+int64(18*time.Millisecond))}, 100e-6, ErrInconsistent},
	}
	for _, tt := range tests {
		if _, err := EstimateClockMaxSkew(tt.samples, tt.maxSkew); !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestClockSampleOffset(t *testing.T) {
	// t0 = 1000 ms, t2 = 1010 ms, guest 1007 ms: offset 1007 - 1005 = 2 ms,
	// bound 5 ms.
	ms := int64(time.Millisecond)
	s := ClockSample{HostSend: time.Unix(0, 1000*ms), HostRecv: time.Unix(0, 1010*ms), GuestReal: 1007 * ms, GuestMono: 1}
	off, bound := s.Offset()
	if off != 2*time.Millisecond || bound != 5*time.Millisecond || s.RTT() != 10*time.Millisecond {
		t.Errorf("Offset = %v ± %v, RTT %v; want 2ms ± 5ms, 10ms", off, bound, s.RTT())
	}
}

func TestClockPlace(t *testing.T) {
	h0 := int64(1_764_000_000_000_000_000)
	rng := rand.New(rand.NewPCG(9, 9))
	real := truth{H0: h0, G0: h0, S: 0}
	mono := truth{H0: h0, G0: int64(time.Minute), S: 0}
	c, err := EstimateClock(synth(rng, 5, h0, 10*time.Second, real, mono))
	if err != nil {
		t.Fatal(err)
	}
	hTrue := h0 + int64(5*time.Second)
	e := c.Place(Event{V: 1, Src: SrcClient, Ev: "write", MonoNS: mono.guest(hTrue), UncertNS: 1000})
	if d := e.HostNS - hTrue; absInt64(d) > e.UncertNS || e.UncertNS <= 1000 {
		t.Errorf("placed at %d ± %d, truth %d", e.HostNS, e.UncertNS, hTrue)
	}
	r := c.Place(Event{V: 1, Src: SrcServer, Ev: "accept", RealNS: real.guest(hTrue)})
	if d := r.HostNS - hTrue; absInt64(d) > r.UncertNS {
		t.Errorf("real placed at %d ± %d, truth %d", r.HostNS, r.UncertNS, hTrue)
	}
	host := Event{V: 1, Src: SrcHost, Ev: "x", HostNS: 42}
	if got := c.Place(host); got.HostNS != 42 || got.UncertNS != 0 {
		t.Errorf("host event changed: %+v", got)
	}
}
