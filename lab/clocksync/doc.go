// Package clocksync measures a guest's clocks against the host's over SSH:
// the host half of hostlab's NTP-style clock exchange, whose guest half is
// hostlab-clock (echo/probes).
//
// Measure keeps one SSH session running hostlab-clock and makes n exchanges,
// one at a time: it stamps host time right before writing a probe line and
// right after reading the reply, which carries the guest's CLOCK_REALTIME and
// CLOCK_MONOTONIC read while answering. Each exchange is a
// timeline.ClockSample; Estimate fits them with timeline.EstimateClock, so
// guest-stamped events can be placed on the host time axis with a bound.
package clocksync
