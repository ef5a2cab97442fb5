package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab"
)

// defaultBound is how long a scenario without its own bound watches.
const defaultBound = 60 * time.Second

// observe waits until the client reports an outcome or the bound passes,
// logging progress (retransmissions, RTO, countdown) every few seconds.
func (r *Run) observe(ctx context.Context) {
	boundNow := func() time.Duration {
		b := r.Opt.MaxWait
		if b == 0 && r.Scenario.Bound != nil {
			b = r.Scenario.Bound(r.evidence())
		}
		if b == 0 {
			b = defaultBound
		}
		return b
	}
	bound := boundNow()
	deadline := r.faultStart.Add(bound)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastLog time.Time
	lastSeen := -1
	for {
		if _, done := r.client.exited(); done {
			return
		}
		if r.Scenario.Survival != nil {
			if _, ok := r.Scenario.Survival(r.evidence()); ok {
				return // The connection outlived the fault.
			}
		}
		if ob := r.evidence().observation(); ob.Error != "" {
			// Let the client finish on its own (its exit is evidence too).
			select {
			case <-r.client.p.Done():
			case <-time.After(3 * time.Second):
			case <-ctx.Done():
			}
			return
		}
		if time.Now().After(deadline) {
			r.note(fmt.Sprintf("the client reported nothing within %s of the fault", bound.Round(time.Second)))
			return
		}
		select {
		case <-ctx.Done():
			r.note("interrupted while observing: " + ctx.Err().Error())
			return
		case <-r.client.notify:
		case <-tick.C:
			// The scenario's bound may grow with the evidence (e.g. backoff
			// reverts); a user's --max-wait stays fixed.
			if b := boundNow(); b > bound {
				bound, deadline = b, r.faultStart.Add(b)
			}
			// A line on every new retransmission, else a heartbeat every
			// 2 s at first and every 15 s once the wait is long.
			n := -1
			if ti := lastTCPInfo(r.client.snapshot()); ti != nil {
				n = int(ti.TotalRetrans)
			}
			every := 2 * time.Second
			if time.Since(r.faultStart) > 30*time.Second {
				every = 15 * time.Second
			}
			if n != lastSeen || time.Since(lastLog) >= every {
				r.progress(deadline)
				lastLog, lastSeen = time.Now(), n
			}
		}
	}
}

// progress logs the client's TCP state since the fault.
func (r *Run) progress(deadline time.Time) {
	attrs := []any{"since_fault", time.Since(r.faultStart).Round(100 * time.Millisecond), "gives_up_in", time.Until(deadline).Round(time.Second)}
	if ti := lastTCPInfo(r.client.snapshot()); ti != nil {
		attrs = append(attrs, "state", ti.State, "retransmits", ti.Retransmits, "total_retrans", ti.TotalRetrans,
			"backoff", ti.Backoff, "rto", (time.Duration(ti.RTOus) * time.Microsecond).Round(time.Millisecond), "unacked", ti.Unacked)
	}
	r.log.Info("waiting for the client", attrs...)
}

// lastTCPInfo is the newest TCP_INFO sample.
func lastTCPInfo(evs []echo.Event) *echo.TCPInfo {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].TCPInfo != nil {
			return evs[i].TCPInfo
		}
	}
	return nil
}

// faultAt is the fault instant, the one detection counts from: the middle
// of the window the fault was pinned to (a power cut's pause call, a kill
// between two guest clock stamps), or, for a fault not pinned, when hostlab
// issued it (fault_start). faultInstant gives its bound, which is part of
// every detection's uncertainty.
func (r *Run) faultAt() time.Time {
	at, _, _ := r.faultInstant()
	return at
}

// stopClient ends the client if it still runs, recording that hostlab
// stopped it: its end is then hostlab's doing, not an observation.
func (r *Run) stopClient() {
	if r.client == nil {
		return
	}
	if _, done := r.client.exited(); !done {
		now := r.hostEvent(evClientStopped, map[string]any{"why": "hostlab stopped watching"})
		r.mu.Lock()
		r.stoppedAt = now
		r.mu.Unlock()
	}
	r.client.stop()
}

// Step is one rung of the retransmission ladder read from TCP_INFO.
type Step struct {
	// T is the time since the fault, in seconds.
	T float64 `json:"t_s"`
	// Retransmits is tcpi_retransmits (unanswered RTO expiries).
	Retransmits int `json:"retransmits"`
	// TotalRetrans is tcpi_total_retrans.
	TotalRetrans int `json:"total_retrans"`
	// Backoff is tcpi_backoff.
	Backoff int `json:"backoff"`
	// RTOms is the RTO in milliseconds.
	RTOms float64 `json:"rto_ms"`
	// State is the TCP state.
	State string `json:"state"`
}

// ladder lists TCP_INFO changes of the client since shortly before the fault.
func (r *Run) ladder() ([]Step, int) {
	clk, ok := r.clock[lab.RoleClient]
	if !ok || r.client == nil {
		return nil, 0
	}
	var steps []Step
	var base, top uint32
	haveBase := false
	for _, e := range r.client.snapshot() {
		if e.TCPInfo == nil {
			continue
		}
		at, _ := clk.HostTimeFromMono(e.MonoNS)
		ti := e.TCPInfo
		if at.Before(r.faultStart) {
			base, haveBase = ti.TotalRetrans, true
			continue
		}
		if !haveBase {
			base, haveBase = ti.TotalRetrans, true
		}
		if ti.TotalRetrans > top {
			top = ti.TotalRetrans
		}
		s := Step{T: at.Sub(r.faultAt()).Seconds(), Retransmits: int(ti.Retransmits), TotalRetrans: int(ti.TotalRetrans),
			Backoff: int(ti.Backoff), RTOms: float64(ti.RTOus) / 1000, State: ti.State}
		if n := len(steps); n > 0 && steps[n-1].Retransmits == s.Retransmits && steps[n-1].Backoff == s.Backoff &&
			steps[n-1].RTOms == s.RTOms && steps[n-1].State == s.State && steps[n-1].TotalRetrans == s.TotalRetrans {
			continue
		}
		steps = append(steps, s)
	}
	if top < base {
		top = base
	}
	return steps, int(top - base)
}
