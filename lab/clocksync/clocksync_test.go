package clocksync

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hostlab/hostlab/provision"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// dial starts a test server running guest and connects to it, pinning its
// host key.
func dial(t *testing.T, guest guestFunc) *provision.Client {
	t.Helper()
	host, err := provision.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	user, err := provision.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := startTestServer(t, host.Signer, user.PublicKey(), guest)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := provision.Dial(ctx, addr, host.PublicKey(), user.Signer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEstimateSharedClock measures a "guest" that shares the host's clocks:
// every guest stamp must fall inside its exchange, and the fit must find an
// offset of 0 within its bound.
//
// Tolerance: the bound must be below 5 ms, half the round trip of the
// fastest of 20 exchanges over loopback SSH (typically tens of µs).
func TestEstimateSharedClock(t *testing.T) {
	c := dial(t, clockGuest)
	clock, samples, err := Estimate(context.Background(), c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != DefaultSamples || clock.Samples != DefaultSamples {
		t.Fatalf("%d samples, clock of %d; want %d", len(samples), clock.Samples, DefaultSamples)
	}
	for i, s := range samples {
		if s.GuestReal < s.HostSend.UnixNano() || s.GuestReal > s.HostRecv.UnixNano() {
			t.Errorf("sample %d: guest realtime %d outside its exchange [%d, %d]",
				i, s.GuestReal, s.HostSend.UnixNano(), s.HostRecv.UnixNano())
		}
	}
	off, bound := clock.Real.Offset, clock.Real.OffsetBound
	t.Logf("offset %v ± %v, min RTT %v", off, bound, clock.MinRTT)
	if off.Abs() > bound {
		t.Errorf("offset %v outside ±%v of 0 (shared clock)", off, bound)
	}
	if bound >= 5*time.Millisecond {
		t.Errorf("bound %v, want < 5ms on loopback", bound)
	}
	// A monotonic stamp read on the host now must map to the host's now.
	var ts unix.Timespec
	before := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	at, unc := clock.HostTimeFromMono(ts.Nano())
	if at.Add(unc).Before(before) || at.Add(-unc).After(after) {
		t.Errorf("monotonic now maps to %v ± %v, outside [%v, %v]", at, unc, before, after)
	}
}

func TestMeasureCount(t *testing.T) {
	c := dial(t, clockGuest)
	samples, err := Measure(context.Background(), c, 3)
	if err != nil || len(samples) != 3 {
		t.Errorf("Measure(3) = %d samples, %v", len(samples), err)
	}
	if _, err := Measure(context.Background(), c, -1); err == nil {
		t.Error("Measure(-1) accepted")
	}
}

func TestMeasureToolMissing(t *testing.T) {
	c := dial(t, func(cmd string, ch ssh.Channel) uint32 { return clockGuest("old-image-"+cmd, ch) })
	_, err := Measure(context.Background(), c, 0)
	if !errors.Is(err, ErrClockMissing) {
		t.Fatalf("Measure = %v, want ErrClockMissing", err)
	}
	t.Log(err)
}

func TestMeasureBadReply(t *testing.T) {
	c := dial(t, func(cmd string, ch ssh.Channel) uint32 {
		io.WriteString(ch, "garbage\n")
		io.Copy(io.Discard, ch)
		return 0
	})
	if _, err := Measure(context.Background(), c, 0); err == nil {
		t.Fatal("a garbage reply was accepted")
	} else {
		t.Log(err)
	}
}

func TestMeasureToolFails(t *testing.T) {
	c := dial(t, func(cmd string, ch ssh.Channel) uint32 {
		io.WriteString(ch.Stderr(), "hostlab-clock: read probe: boom\n")
		return 1
	})
	if _, err := Measure(context.Background(), c, 0); err == nil || errors.Is(err, ErrClockMissing) {
		t.Fatalf("Measure = %v, want a failure other than ErrClockMissing", err)
	} else {
		t.Log(err)
	}
}

// TestMeasureCancel cancels while the guest is frozen: it reads nothing and
// never answers, not even to the session's close.
func TestMeasureCancel(t *testing.T) {
	frozen := make(chan struct{})
	t.Cleanup(func() { close(frozen) })
	c := dial(t, func(string, ssh.Channel) uint32 { <-frozen; return 0 })
	defer func(g time.Duration) { cancelGrace = g }(cancelGrace)
	cancelGrace = 10 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := Measure(ctx, c, 0); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Measure = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Measure did not return after its context ended")
	}
}
