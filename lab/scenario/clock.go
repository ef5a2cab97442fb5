package scenario

import (
	"context"
	"fmt"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/clocksync"
	"github.com/hostlab/hostlab/lab/timeline"
)

// syncClocks measures both guests' clocks against the host's.
func (r *Run) syncClocks(ctx context.Context) error {
	for _, role := range lab.Roles {
		c, err := r.guest(ctx, role)
		if err != nil {
			return err
		}
		clk, samples, err := clocksync.Estimate(ctx, c, 20)
		if err != nil {
			return fmt.Errorf("%s clock: %w", role, err)
		}
		r.clock[role], r.samples[role] = clk, samples
		_, unc := clk.HostTimeFromMono(samples[len(samples)-1].GuestMono)
		r.log.Debug("clock", "guest", role, "uncertainty", unc)
	}
	return nil
}

// resyncClient adds a second set of client clock samples so the fit spans
// the whole run (the client never reboots).
func (r *Run) resyncClient(ctx context.Context) {
	c, err := r.guest(ctx, lab.RoleClient)
	if err != nil {
		r.note("clock resync: " + err.Error())
		return
	}
	more, err := clocksync.Measure(ctx, c, 20)
	if err != nil {
		r.note("clock resync: " + err.Error())
		return
	}
	all := append(append([]timeline.ClockSample(nil), r.samples[lab.RoleClient]...), more...)
	if clk, err := timeline.EstimateClock(all); err == nil {
		r.clock[lab.RoleClient], r.samples[lab.RoleClient] = clk, all
	} else {
		r.note("clock fit over the run: " + err.Error())
	}
}
