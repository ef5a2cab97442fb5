package vms

import (
	"context"
	"fmt"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// PowerCut says when a pinned power-off (CutPower) took effect, on the
// host's clock.
type PowerCut struct {
	// PauseStart is when the pause call was issued and Paused the earliest
	// evidence that it took effect: the pause call's return, or the
	// domain's "suspended" lifecycle event when that arrived first (libvirt
	// sends it on QEMU's STOP event, before it saves the domain's status
	// and replies). The guest executed its last instruction, and QEMU
	// forwarded its last frame, at some instant in between.
	PauseStart time.Time `json:"pause_start"`
	Paused     time.Time `json:"paused"`
	// PauseReturned is when the pause call returned.
	PauseReturned time.Time `json:"pause_returned"`
	// Destroyed is when the destroy call returned: the domain is off.
	Destroyed time.Time `json:"destroyed"`
}

// At is the middle of the pause window: the instant taken as the one the
// guest stopped at.
func (c PowerCut) At() time.Time {
	return c.PauseStart.Add(c.Paused.Sub(c.PauseStart) / 2)
}

// Uncert is half the pause window: the ± bound on At.
func (c PowerCut) Uncert() time.Duration {
	return (c.Paused.Sub(c.PauseStart) + 1) / 2
}

// CutPower powers the domain off in two explicit steps: Pause, then
// PowerOff (libvirt destroy). A destroy takes ~1.6 s under TCG and nothing
// says when within that call the guest fell silent; a pause (QEMU's "stop")
// returns only after QEMU has set the VM's run state to paused — from then
// on its net layer queues, rather than sends, any frame the guest's NICs
// hand it — and waited for every vCPU to stop. So the guest fell silent
// within the pause window (PowerCut.PauseStart..Paused): a few
// milliseconds, or tens when the host is loaded.
//
// The verbs never stand in for each other: if the pause fails, CutPower
// returns its error and destroys nothing (the domain is left as it was). If
// the destroy fails, the domain stays paused — silent — and CutPower returns
// the error along with the pause's instants.
func (h *Hypervisor) CutPower(ctx context.Context, name string) (PowerCut, error) {
	var cut PowerCut
	dom, err := h.lookup(ctx, name)
	if err != nil {
		return cut, fmt.Errorf("cut power: %w", err)
	}
	// The lifecycle events may show the pause before its call returns;
	// without them the call's return bounds it.
	evctx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	evs, _ := h.Events(evctx)
	cut.PauseStart, cut.PauseReturned, err = timedCall(ctx, "pause domain "+name, func() error {
		return h.api.DomainSuspend(dom)
	})
	if err != nil {
		return PowerCut{}, fmt.Errorf("cut power: %w (nothing was destroyed)", err)
	}
	cut.Paused = firstSuspended(drain(evs), name, cut.PauseStart, cut.PauseReturned)
	_, destroyed, err := timedCall(ctx, "power off domain "+name, func() error {
		return h.api.DomainDestroyFlags(dom, libvirt.DomainDestroyDefault)
	})
	if err != nil {
		return cut, fmt.Errorf("cut power: %w (the domain stays paused)", err)
	}
	cut.Destroyed = destroyed
	return cut, nil
}

// drain returns the events already waiting in ch, without blocking.
func drain(ch <-chan Event) []Event {
	var out []Event
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

// firstSuspended is the arrival of the domain's first "suspended" event
// within [start, returned], or returned when none arrived in that span.
func firstSuspended(evs []Event, name string, start, returned time.Time) time.Time {
	for _, ev := range evs {
		if ev.Domain == name && ev.Event == "suspended" && !ev.Time.Before(start) && ev.Time.Before(returned) {
			return ev.Time
		}
	}
	return returned
}

// timedCall runs op as callCtx does and returns the host's instants right
// before op was issued and right after it returned.
func timedCall(ctx context.Context, what string, op func() error) (start, end time.Time, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	type result struct {
		start, end time.Time
		err        error
	}
	done := make(chan result, 1)
	go func() {
		s := time.Now()
		err := op()
		done <- result{s, time.Now(), err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			r.err = fmt.Errorf("%s: %w", what, r.err)
		}
		return r.start, r.end, r.err
	case <-ctx.Done():
		return time.Time{}, time.Time{}, fmt.Errorf("%s: %w", what, ctx.Err())
	}
}
