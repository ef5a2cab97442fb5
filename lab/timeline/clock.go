package timeline

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// DefaultMaxSkew is the largest guest/host clock rate difference EstimateClock
// assumes (1000 ppm); it bounds the drift when the samples cannot.
const DefaultMaxSkew = 1e-3

// ErrNoSamples is returned when a clock fit is asked for without samples.
var ErrNoSamples = errors.New("no clock samples")

// ErrBadSample marks a sample whose host receive precedes its send or whose
// guest stamps are missing.
var ErrBadSample = errors.New("bad clock sample")

// ErrInconsistent is returned when no constant-rate clock within the skew
// limit fits every sample, e.g. because the guest clock was stepped.
var ErrInconsistent = errors.New("clock samples inconsistent")

// ClockSample is one NTP-style exchange: the host sent a request at HostSend,
// the guest read its clocks while answering, the host got the answer at
// HostRecv.
type ClockSample struct {
	// HostSend is the host time the request left.
	HostSend time.Time
	// HostRecv is the host time the answer arrived.
	HostRecv time.Time
	// GuestReal is the guest's CLOCK_REALTIME in ns since the Unix epoch.
	GuestReal int64
	// GuestMono is the guest's CLOCK_MONOTONIC in ns.
	GuestMono int64
}

// RTT is the sample's round-trip time on the host clock.
func (s ClockSample) RTT() time.Duration { return s.HostRecv.Sub(s.HostSend) }

// Offset is the NTP offset of the guest realtime clock, GuestReal minus the
// host midpoint (t0+t2)/2, and its bound (t2-t0)/2.
func (s ClockSample) Offset() (offset, bound time.Duration) {
	t0, t2 := s.HostSend.UnixNano(), s.HostRecv.UnixNano()
	mid := t0 + (t2-t0)/2
	return time.Duration(s.GuestReal - mid), time.Duration((t2 - t0 + 1) / 2)
}

// Vertex is one corner of the set of (offset, skew) pairs consistent with
// the samples.
type Vertex struct {
	// A is the host time at the reference guest stamp minus HostRef, in ns.
	A float64 `json:"a_ns"`
	// Skew is host elapsed per guest elapsed minus one.
	Skew float64 `json:"skew"`
}

// Fit maps one guest clock to host realtime: host = HostRef + x + A + Skew*x
// with x = guest - GuestRef, for any (A, Skew) in the feasible polygon.
type Fit struct {
	// GuestRef is the guest stamp of the reference (minimum-RTT) sample.
	GuestRef int64 `json:"guest_ref_ns"`
	// HostRef is the host midpoint of the reference sample.
	HostRef int64 `json:"host_ref_ns"`
	// Offset is the central estimate of guest minus host at the reference.
	Offset time.Duration `json:"offset_ns"`
	// OffsetBound is the ± bound on Offset.
	OffsetBound time.Duration `json:"offset_bound_ns"`
	// Skew is the central estimate of the rate difference.
	Skew float64 `json:"skew"`
	// SkewBound is the ± bound on Skew.
	SkewBound float64 `json:"skew_bound"`
	// Feasible holds the corners of the consistent (A, Skew) polygon.
	Feasible []Vertex `json:"feasible"`
}

// HostTime maps a guest stamp to host time and the ± bound that contains the
// true host time under the fit's assumptions; a zero Fit gives the zero
// time and the largest bound.
func (f Fit) HostTime(guest int64) (time.Time, time.Duration) {
	if len(f.Feasible) == 0 {
		return time.Time{}, time.Duration(math.MaxInt64)
	}
	x := guest - f.GuestRef
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range f.Feasible {
		y := v.A + v.Skew*float64(x)
		lo, hi = min(lo, y), max(hi, y)
	}
	mid := math.Floor((lo + hi) / 2)
	unc := math.Ceil(max(hi-mid, mid-lo)) + 1
	return time.Unix(0, f.HostRef+x+int64(mid)), time.Duration(unc)
}

// Clock maps one guest's clocks to host realtime.
type Clock struct {
	// Real fits the guest's CLOCK_REALTIME.
	Real Fit `json:"real"`
	// Mono fits the guest's CLOCK_MONOTONIC.
	Mono Fit `json:"mono"`
	// Samples is the number of samples used.
	Samples int `json:"samples"`
	// MinRTT is the smallest round trip among them.
	MinRTT time.Duration `json:"min_rtt_ns"`
	// MaxSkew is the rate difference assumed possible.
	MaxSkew float64 `json:"max_skew"`
}

// EstimateClock fits the guest clocks to host time with DefaultMaxSkew.
func EstimateClock(samples []ClockSample) (Clock, error) {
	return EstimateClockMaxSkew(samples, DefaultMaxSkew)
}

// EstimateClockMaxSkew fits the guest clocks to host time, assuming the rate
// difference is at most maxSkew.
//
// Each sample says the guest stamp was taken at some host time in
// [HostSend, HostRecv]; the fit keeps every line host = a + (1+skew)*guest
// that passes through all those intervals. The minimum-RTT sample is the
// reference. With one sample (or all at one guest time) the skew is only
// bounded by maxSkew, so the uncertainty grows by maxSkew per unit of guest
// time away from the sample; with samples spread in time the data bound it.
func EstimateClockMaxSkew(samples []ClockSample, maxSkew float64) (Clock, error) {
	if len(samples) == 0 {
		return Clock{}, fmt.Errorf("estimate clock: %w", ErrNoSamples)
	}
	if !(maxSkew >= 0 && maxSkew < 1) {
		return Clock{}, fmt.Errorf("estimate clock: max skew %g outside [0, 1): %w", maxSkew, ErrBadSample)
	}
	ref := 0
	for i, s := range samples {
		if s.HostRecv.Before(s.HostSend) || s.GuestReal == 0 || s.GuestMono == 0 {
			return Clock{}, fmt.Errorf("estimate clock: sample %d (%v..%v, real %d, mono %d): %w",
				i, s.HostSend, s.HostRecv, s.GuestReal, s.GuestMono, ErrBadSample)
		}
		if s.RTT() < samples[ref].RTT() {
			ref = i
		}
	}
	c := Clock{Samples: len(samples), MinRTT: samples[ref].RTT(), MaxSkew: maxSkew}
	var err error
	if c.Real, err = fit(samples, ref, maxSkew, func(s ClockSample) int64 { return s.GuestReal }); err != nil {
		return Clock{}, fmt.Errorf("estimate clock: realtime: %w", err)
	}
	if c.Mono, err = fit(samples, ref, maxSkew, func(s ClockSample) int64 { return s.GuestMono }); err != nil {
		return Clock{}, fmt.Errorf("estimate clock: monotonic: %w", err)
	}
	return c, nil
}

// HostTimeFromMono maps a guest CLOCK_MONOTONIC stamp to host time ± bound.
func (c Clock) HostTimeFromMono(mono int64) (time.Time, time.Duration) {
	return c.Mono.HostTime(mono)
}

// HostTimeFromReal maps a guest CLOCK_REALTIME stamp to host time ± bound.
func (c Clock) HostTimeFromReal(real int64) (time.Time, time.Duration) {
	return c.Real.HostTime(real)
}

// Place sets a guest event's HostNS and UncertNS from its MonoNS stamp (or
// RealNS when it has no monotonic stamp), adding the clock's bound to any
// uncertainty the event already carries; events without guest stamps are
// returned unchanged.
func (c Clock) Place(e Event) Event {
	var t time.Time
	var u time.Duration
	switch {
	case e.MonoNS != 0:
		t, u = c.HostTimeFromMono(e.MonoNS)
	case e.RealNS != 0:
		t, u = c.HostTimeFromReal(e.RealNS)
	default:
		return e
	}
	e.HostNS = t.UnixNano()
	e.UncertNS += int64(u)
	return e
}

// fit builds the feasible (a, skew) polygon for one guest clock. Unknowns are
// scaled so both are in ns: u = skew*X with X the largest |guest - guestRef|.
func fit(samples []ClockSample, ref int, maxSkew float64, guest func(ClockSample) int64) (Fit, error) {
	r := samples[ref]
	t0, t2 := r.HostSend.UnixNano(), r.HostRecv.UnixNano()
	f := Fit{GuestRef: guest(r), HostRef: t0 + (t2-t0)/2}
	var xs int64 = 1
	for _, s := range samples {
		xs = max(xs, absInt64(guest(s)-f.GuestRef))
	}
	X := float64(xs)
	const slack = 1 // ns, covers stamp rounding
	lo0 := float64(t0-f.HostRef) - slack
	hi0 := float64(t2-f.HostRef) + slack
	umax := maxSkew * X
	poly := []point{{lo0, -umax}, {hi0, -umax}, {hi0, umax}, {lo0, umax}}
	for _, s := range samples {
		x := guest(s) - f.GuestRef
		w := float64(x) / X
		// lo <= a + w*u <= hi, relative to HostRef + x.
		lo := float64(s.HostSend.UnixNano()-f.HostRef-x) - slack
		hi := float64(s.HostRecv.UnixNano()-f.HostRef-x) + slack
		poly = clip(poly, 1, w, hi)
		poly = clip(poly, -1, -w, -lo)
		if len(poly) == 0 {
			return Fit{}, fmt.Errorf("guest stamp %d outside every line through the earlier samples: %w", guest(s), ErrInconsistent)
		}
	}
	aLo, aHi, sLo, sHi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, p := range poly {
		v := Vertex{A: p.a, Skew: p.u / X}
		f.Feasible = append(f.Feasible, v)
		aLo, aHi = min(aLo, v.A), max(aHi, v.A)
		sLo, sHi = min(sLo, v.Skew), max(sHi, v.Skew)
	}
	f.Offset = time.Duration(f.GuestRef - f.HostRef - int64(math.Round((aLo+aHi)/2)))
	f.OffsetBound = time.Duration(math.Ceil((aHi - aLo) / 2))
	f.Skew, f.SkewBound = (sLo+sHi)/2, (sHi-sLo)/2
	return f, nil
}

// absInt64 returns |v|.
func absInt64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
