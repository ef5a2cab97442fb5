package clocksync

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hostlab/hostlab/echo/probes"
	"github.com/hostlab/hostlab/lab/timeline"
	"github.com/hostlab/hostlab/provision"
	"golang.org/x/crypto/ssh"
)

// DefaultSamples is the number of exchanges Measure makes when asked for 0.
const DefaultSamples = 20

// ErrClockMissing reports a guest without hostlab-clock (the shell's exit
// status 127).
var ErrClockMissing = errors.New("hostlab-clock not found in the guest: the image predates it; run hostlab down and up")

// cancelGrace is how long Measure waits, after a cancellation, for the
// session to wind down before returning.
var cancelGrace = 2 * time.Second

// probe is the line sent for each exchange; its content is ignored.
var probe = []byte("x\n")

// Measure runs hostlab-clock in the guest over one SSH session and makes n
// exchanges (DefaultSamples if n is 0), one at a time. When ctx is done the
// session is closed and ctx's error returned; a guest that no longer answers
// may keep the session's goroutine until the connection closes.
func Measure(ctx context.Context, c *provision.Client, n int) ([]timeline.ClockSample, error) {
	if n == 0 {
		n = DefaultSamples
	}
	if n < 0 {
		return nil, fmt.Errorf("measure clock on %s: %d samples requested", c.Addr(), n)
	}
	fail := func(step string, err error) error {
		return fmt.Errorf("measure clock on %s: %s: %w", c.Addr(), step, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fail("start", err)
	}
	s, err := c.SSH().NewSession()
	if err != nil {
		return nil, fail("open session", err)
	}
	defer s.Close()
	stdin, err := s.StdinPipe()
	if err != nil {
		return nil, fail("stdin pipe", err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		return nil, fail("stdout pipe", err)
	}
	var stderr bytes.Buffer
	s.Stderr = &stderr
	if err := s.Start(probes.ClockName); err != nil {
		return nil, fail("start "+probes.ClockName, err)
	}

	type result struct {
		samples []timeline.ClockSample
		step    string
		err     error
		wait    error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.samples, r.step, r.err = exchange(stdin, stdout, n)
		stdin.Close()
		r.wait = s.Wait()
		done <- r
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		_ = s.Close()
		t := time.NewTimer(cancelGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
		return nil, fail("exchange", ctx.Err())
	}

	// stderr is complete: Wait has returned.
	var exit *ssh.ExitError
	switch {
	case errors.As(r.wait, &exit) && exit.ExitStatus() == 127:
		return nil, fail("start "+probes.ClockName, ErrClockMissing)
	case errors.As(r.wait, &exit) && r.err != nil:
		return nil, fail(fmt.Sprintf("%s exited at %s", probes.ClockName, r.step), withStderr(r.wait, &stderr))
	case r.err != nil:
		return nil, fail(r.step, withStderr(r.err, &stderr))
	case r.wait != nil:
		return nil, fail("wait for "+probes.ClockName, withStderr(r.wait, &stderr))
	}
	return r.samples, nil
}

// exchange makes n exchanges and returns the samples, or the failed step
// and its error.
func exchange(w io.Writer, r io.Reader, n int) ([]timeline.ClockSample, string, error) {
	br := bufio.NewReader(r)
	samples := make([]timeline.ClockSample, 0, n)
	for i := 1; i <= n; i++ {
		t0 := time.Now()
		if _, err := w.Write(probe); err != nil {
			return nil, fmt.Sprintf("probe %d: send", i), err
		}
		line, err := br.ReadSlice('\n')
		t2 := time.Now()
		if err != nil {
			return nil, fmt.Sprintf("probe %d: read reply", i), err
		}
		real, mono, err := probes.ParseClockReply(string(line))
		if err != nil {
			return nil, fmt.Sprintf("probe %d: parse reply", i), err
		}
		samples = append(samples, timeline.ClockSample{HostSend: t0, HostRecv: t2, GuestReal: real, GuestMono: mono})
	}
	return samples, "", nil
}

// withStderr adds the end of the remote command's stderr, if any, to err.
func withStderr(err error, stderr *bytes.Buffer) error {
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		return err
	}
	if len(msg) > 256 {
		msg = "..." + msg[len(msg)-256:]
	}
	return fmt.Errorf("%w (stderr: %s)", err, msg)
}

// Estimate measures n samples (DefaultSamples if n is 0) and fits the
// guest's clocks to host time; the samples are returned with the fit.
func Estimate(ctx context.Context, c *provision.Client, n int) (timeline.Clock, []timeline.ClockSample, error) {
	samples, err := Measure(ctx, c, n)
	if err != nil {
		return timeline.Clock{}, nil, err
	}
	clock, err := timeline.EstimateClock(samples)
	if err != nil {
		return timeline.Clock{}, samples, fmt.Errorf("clock of %s: %w", c.Addr(), err)
	}
	return clock, samples, nil
}
