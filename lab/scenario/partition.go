package scenario

// partition — the path between client and server breaks, then heals.
//
// Property: while the lab link is cut (both directions; both hosts stay up
// and keep their carrier) the client's unacknowledged data is retransmitted
// into the cut with exponential backoff, exactly as towards a dead host.
// If the client's abort — the tcp_retries2 bound, TCP_USER_TIMEOUT, or for
// an idle client keepalive — comes before a retransmission after the heal,
// the client gets ETIMEDOUT (or a stored soft error), and the server, which
// saw nothing, keeps an ESTABLISHED socket until its next segment draws the
// client kernel's RST. Otherwise the connection survives: the first
// retransmission the timer sends after the heal delivers the queued data —
// up to one RTO after the link is back — and the server's socket never
// noticed the cut.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/timeline"
	"github.com/hostlab/hostlab/vms"
)

// Host events of a partition.
const (
	// evCut is the cut's edge, pinned to the QMP call that made it.
	evCut = "cut"
	// evHealed is the heal's edge, pinned likewise.
	evHealed = "healed"
)

// qemuHop is how long after the client's kernel stamped a frame its QEMU
// may still pass it to the link: the virtio queue and QEMU's main loop. A
// frame stamped less than this before the heal may have crossed.
const qemuHop = 5 * time.Millisecond

// healTimeout bounds the heal, which runs on its own context so that a
// cancelled run still restores the link.
const healTimeout = 30 * time.Second

var partition = Scenario{
	Name:     "partition",
	Summary:  "the lab link is cut in both directions for --down (both hosts stay up), then restored",
	Property: "the client retransmits into the cut; an abort bound (tcp_retries2, TCP_USER_TIMEOUT, keepalive when idle) reached before a retransmission after the heal gives ETIMEDOUT, otherwise the connection survives and the first retransmission after the heal delivers the queued data",
	Own:      []string{"down"},
	Defaults: func(o *Options) {
		if o.Down == 0 {
			o.Down = 5 * time.Second
		}
	},
	Fault:    func(ctx context.Context, r *Run) error { return r.cutLink(ctx) },
	Expect:   partitionExpect,
	Bound:    partitionBound,
	Survival: partitionSurvival,
	Followup: partitionFollowup,
	// The link is healed inside the fault; this only makes sure.
	Heal: func(ctx context.Context, r *Run) error { return r.healLink(ctx) },
}

// cutState is a partition's cut and heal.
type cutState struct {
	domain string
	cut    vms.LinkEdge
	heal   vms.LinkEdge
}

// cutLink cuts the client's lab link, keeps it cut for --down from the cut
// instant (logging the client's retransmissions), then heals it — on a
// fresh context, so that an interrupted run restores the link too.
func (r *Run) cutLink(ctx context.Context) error {
	cli, _ := r.cfg.Lab.State.Guest(lab.RoleClient)
	hv := r.cfg.Lab.Hypervisor()
	return r.markFault("partition", func() (err error) {
		edge, err := hv.CutLink(ctx, cli.Domain, 0)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.cut = &cutState{domain: cli.Domain, cut: edge}
		r.mu.Unlock()
		defer func() {
			if herr := r.healLink(ctx); herr != nil {
				err = errors.Join(err, herr)
			}
		}()
		r.pinFault(evCut, edge.Issued, edge.Returned,
			"the QMP object-add that put the cut on the client's lab NIC: from its issue to its reply",
			map[string]any{"domain": cli.Domain, "mechanism": vms.CutMechanism, "call_ms": float64(edge.Returned.Sub(edge.Issued)) / 1e6})
		r.log.Info("link cut", "for", r.Opt.Down, "edge", edge.Returned.Sub(edge.Issued).Round(10*time.Microsecond))
		until := edge.At().Add(r.Opt.Down)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		seen := -1
		for {
			left := time.Until(until)
			if left <= 0 {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(left):
				return nil
			case <-tick.C:
				if ti := lastTCPInfo(r.client.snapshot()); ti != nil && int(ti.TotalRetrans) != seen {
					seen = int(ti.TotalRetrans)
					r.log.Info("link cut", "since", time.Since(edge.At()).Round(100*time.Millisecond), "heals_in", left.Round(100*time.Millisecond),
						"state", ti.State, "retransmits", ti.Retransmits, "total_retrans", ti.TotalRetrans, "rto", (time.Duration(ti.RTOus) * time.Microsecond).Round(time.Millisecond))
				}
			}
		}
	})
}

// healLink restores the client's lab link if it is cut, pinning the heal's
// edge as a "healed" host event. It runs on its own context: it must work
// after Ctrl-C.
func (r *Run) healLink(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healTimeout)
	defer cancel()
	cli, _ := r.cfg.Lab.State.Guest(lab.RoleClient)
	edge, healed, err := r.cfg.Lab.Hypervisor().HealLink(ctx, cli.Domain, 0)
	if !healed {
		return err
	}
	r.mu.Lock()
	if r.cut != nil {
		r.cut.heal = edge
	}
	r.mu.Unlock()
	if e, eerr := timeline.NewEvent(timeline.SrcHost, evHealed, edge.At(), map[string]any{"from_ns": edge.Issued.UnixNano(), "to_ns": edge.Returned.UnixNano(),
		"what": "the QMP object-del that removed the cut: from its issue to its reply", "domain": cli.Domain}); eerr == nil {
		e.UncertNS = int64(edge.Uncert())
		r.mu.Lock()
		r.host = append(r.host, e)
		r.mu.Unlock()
	}
	r.log.Info("link restored", "edge", edge.Returned.Sub(edge.Issued).Round(10*time.Microsecond))
	return err
}

// healLeftoverCut restores a lab link a killed run left cut.
func (r *Run) healLeftoverCut(ctx context.Context) error {
	cli, _ := r.cfg.Lab.State.Guest(lab.RoleClient)
	_, healed, err := r.cfg.Lab.Hypervisor().HealLink(ctx, cli.Domain, 0)
	if err != nil {
		return fmt.Errorf("restore the lab link: %w", err)
	}
	if healed {
		r.note("the client's lab link was still cut (by a run that was killed): restored before the run")
	}
	return nil
}

// HealCase is a client retransmitting into a cut link that is restored.
type HealCase struct {
	AbortCase
	// HealLo and HealHi bound the heal as the client's wire sees it: a
	// retransmission stamped before HealLo was lost in the cut, one stamped
	// after HealHi crossed.
	HealLo, HealHi time.Time
	// Turnaround is how long the server's ACK takes to come back to the
	// client's wire, and TurnaroundFrom says how it was measured: on the
	// delivering exchange itself when the wire shows it (the ACK against
	// the retransmission it answered), else the longest before the fault.
	Turnaround     time.Duration
	TurnaroundFrom string
}

// HealOutcome is what a rule predicts for a cut link that heals.
type HealOutcome struct {
	// Survives is true when a retransmission crosses the restored link
	// before the abort; false when the abort comes first (its window is
	// then Rules.Abort's).
	Survives bool
	// Delivery, when the connection survives, is when the server's ACK of
	// the queued data reaches the client's wire.
	Delivery Span
	// Rung is the number of the RTO retransmission predicted to deliver
	// (counting the ones on the wire), or the expiry that aborts.
	Rung int
}

// errTooClose marks an outcome the timers' slack leaves undecided.
var errTooClose = errors.New("too close to call")

// kernelHeal is tcp_retransmit_timer across a heal: after the last RTO
// retransmission on the wire in the cut, the timer keeps expiring along the
// ladder; an expiry at or past retrans_stamp + the bound aborts, any other
// retransmits. The connection survives when an expiry retransmits after the
// heal; that retransmission delivers the queued data and its ACK comes back
// within the turnaround measured before the fault. Each timer may fire late
// by its granule plus the largest lateness measured in this run, so an
// expiry near the heal may or may not have crossed; near the bound it may or
// may not abort — and when that decides the outcome, it is too close to
// call.
func kernelHeal(c HealCase) (HealOutcome, error) {
	l := c.Ladder
	bound, from := boundOf(c.AbortCase)
	origin := l.RetransStamp()
	deadline := origin.Add(bound)
	for _, r := range l.Rungs[1:] {
		if !r.At.Before(deadline) {
			return HealOutcome{}, fmt.Errorf("a retransmission at %s is at or past the bound (%s from retrans_stamp), where the kernel aborts instead: %w",
				r.At.Format("15:04:05.000"), fmtSecs(bound), errContradicted)
		}
	}
	allow := func(d time.Duration) time.Duration { return model.TimerSlack(d, c.HZ) + l.MaxLate() }
	last := l.Last()
	n := len(l.Rungs)
	if l.Reverts > 0 {
		// ICMP reverts (the client's neighbour entry for the server failed in
		// the cut) re-arm the timer shorter than the ladder, but the abort
		// stays time-bounded: an expiry comes at most one in-force RTO past
		// the bound.
		if latest := deadline.Add(last.Armed + allow(last.Armed)); latest.Before(c.HealLo) {
			return HealOutcome{Rung: n + 1}, nil
		}
		return HealOutcome{}, fmt.Errorf("%w: %d ICMP backoff reverts in the cut (RFC 6069) re-arm the timer shorter than the ladder, and the bound (%s) is not surely passed before the heal",
			errTooClose, l.Reverts, from)
	}
	// maybe is the earliest retransmission that may have crossed, maybeN
	// its number; abortMaybe says an earlier expiry may have aborted.
	var maybe time.Time
	maybeN, abortMaybe := 0, false
	if !last.At.Before(c.HealLo) {
		maybe, maybeN = last.At, n
	}
	lo, hi, rto := last.At, last.At, last.Armed
	for range 10000 {
		lenLo := timerLength(lo.Sub(origin), rto, c.UserTimeout)
		lenHi := timerLength(hi.Sub(origin), rto, c.UserTimeout)
		eLo, eHi := lo.Add(lenLo), hi.Add(lenHi+allow(lenHi))
		n++
		switch {
		case !eLo.Before(deadline):
			if !maybe.IsZero() {
				return HealOutcome{}, fmt.Errorf("%w: retransmission %d at the heal may have crossed, else expiry %d aborts (%s)", errTooClose, maybeN, n, from)
			}
			return HealOutcome{Rung: n}, nil
		case !eHi.Before(deadline):
			// This expiry may abort or retransmit.
			if !maybe.IsZero() || !eHi.Before(c.HealLo) {
				return HealOutcome{}, fmt.Errorf("%w: expiry %d may abort (%s) or retransmit across the heal", errTooClose, n, from)
			}
			abortMaybe = true
			eHi = deadline // had it retransmitted, it did so before the bound
		case !eLo.Before(c.HealHi):
			// It retransmits, after the heal: the data crosses.
			if abortMaybe {
				return HealOutcome{}, fmt.Errorf("%w: an earlier expiry may have aborted (%s), else retransmission %d crosses", errTooClose, from, n)
			}
			first, firstN, nominal := eLo, n, eLo
			if !maybe.IsZero() {
				first, firstN, nominal = maybe, maybeN, maybe
			}
			basis := fmt.Sprintf("%s: the timer's first expiry after the heal retransmits (RTO retransmission %d, %s after the last one in the cut, the bound not reached)", from, n, fmtSecs(eLo.Sub(last.At)))
			if firstN != n {
				basis += fmt.Sprintf(", unless retransmission %d, at the heal, crossed already", firstN)
			}
			basis += fmt.Sprintf("; ACKed within the %s turnaround (%s); timers late by up to their granule + %s measured",
				fmtSecs(c.Turnaround), c.TurnaroundFrom, fmtSecs(l.MaxLate()))
			return HealOutcome{Survives: true, Rung: firstN,
				Delivery: Span{Lo: first, Hi: eHi.Add(c.Turnaround), Nominal: nominal, Basis: basis}}, nil
		case !eHi.Before(c.HealLo):
			// It retransmits around the heal: it may cross.
			if abortMaybe {
				return HealOutcome{}, fmt.Errorf("%w: an earlier expiry may have aborted (%s), else retransmission %d may cross at the heal", errTooClose, from, n)
			}
			if maybe.IsZero() {
				maybe, maybeN = later(eLo, c.HealLo), n
			}
		}
		rto = model.NextRTO(rto, l.Base, model.RTOMax, n, c.Thin)
		lo, hi = eLo, eHi
	}
	return HealOutcome{}, fmt.Errorf("no expiry along the ladder decides")
}

// WrongHealImmediate has the queued data delivered the moment the link is
// back, as if the client noticed the heal.
var WrongHealImmediate = Rules{Name: "delivery as the link heals", Abort: kernelAbort, Keepalive: kernelKeepalive, Reset: kernelReset,
	Heal: func(c HealCase) (HealOutcome, error) {
		out, err := kernelHeal(c)
		if err != nil || !out.Survives {
			return out, err
		}
		out.Delivery = Span{Lo: c.HealLo, Hi: c.HealHi.Add(c.Turnaround), Nominal: c.HealLo, Basis: "the queued data crosses as the link heals"}
		return out, nil
	}}

// healOf returns the rules' heal rule, the kernel's when unset.
func (k Rules) healOf() func(HealCase) (HealOutcome, error) {
	if k.Heal != nil {
		return k.Heal
	}
	return kernelHeal
}

// cutSpan is the heal as the client's wire sees it: from the heal call's
// issue less the hop a stamped frame still takes to QEMU, to its reply.
func (ev *Evidence) healSpan() (lo, hi time.Time) {
	return ev.Healed.Add(-ev.HealUncert - qemuHop), ev.Healed.Add(ev.HealUncert)
}

// cutWire is the client's wire as it stood at the heal: the connection's
// segments up to the end of the heal window, analysed as for a dead peer
// (retransmissions of data not acknowledged by then).
func cutWire(ev *Evidence) *Evidence {
	cp := *ev
	if ev.Wire == nil {
		return &cp
	}
	_, hi := ev.healSpan()
	var segs []Segment
	for _, s := range ev.Wire.Segments {
		if !s.At.After(hi) {
			segs = append(segs, s)
		}
	}
	w := analyseWire(segs, ev.FaultStart)
	cp.Wire = &w
	return &cp
}

// ackTurnaround is the longest a data segment of the client waited for the
// server's ACK before the fault, on the client's wire.
func ackTurnaround(ev *Evidence) time.Duration {
	if ev.Wire == nil {
		return 0
	}
	var worst time.Duration
	type pending struct {
		end uint32
		at  time.Time
	}
	var out []pending
	for _, s := range ev.Wire.Segments {
		if !s.At.Before(ev.FaultStart) {
			break
		}
		if s.Out {
			if s.Len > 0 {
				out = append(out, pending{s.Seq + uint32(s.Len), s.At})
			}
			continue
		}
		if !s.Has(tcpACK) {
			continue
		}
		keep := out[:0]
		for _, p := range out {
			if !seqAfter(p.end, s.Ack) {
				worst = max(worst, s.At.Sub(p.at))
			} else {
				keep = append(keep, p)
			}
		}
		out = keep
	}
	return worst
}

// deliveryInstant is the server's first segment on the client's wire after
// the heal window opened that acknowledges data outstanding at the heal:
// the instant the client's kernel learnt the queued data crossed. The
// retransmission it answered is the last one before it.
func deliveryInstant(ev *Evidence) (*Instant, time.Time) {
	if ev.Wire == nil {
		return nil, time.Time{}
	}
	lo, hi := ev.healSpan()
	var una uint32
	haveUna := false
	var lastOut time.Time
	for _, s := range ev.Wire.Segments {
		switch {
		case s.At.After(hi) && s.Out:
			lastOut = s.At
		case !s.At.After(hi) && !s.Out && s.Has(tcpACK):
			if !haveUna || seqAfter(s.Ack, una) {
				una, haveUna = s.Ack, true
			}
			continue
		case !s.At.After(hi) && s.Out:
			lastOut = s.At
			continue
		}
		if s.Out || s.At.Before(lo) || !s.Has(tcpACK) || !haveUna || !seqAfter(s.Ack, una) {
			continue
		}
		return &Instant{Lo: s.At, Hi: s.At, Source: "the server's ACK of the queued data on the client's wire", Act: "had its queued data acknowledged"}, lastOut
	}
	return nil, time.Time{}
}

// partitionExpect applies the rules to a partition: the ladder in the cut
// decides between an abort inside it and a delivery after the heal.
func partitionExpect(ev *Evidence, k Rules) Judgement {
	rep := partitionReport(ev)
	if ev.Healed.IsZero() {
		j := missing("the link's heal is not on the timeline")
		j.Partition = rep
		return j
	}
	c, err := deadPeerConfig(ev)
	if err != nil {
		j := missing(err.Error())
		j.Partition = rep
		return j
	}
	var j Judgement
	if c.unacked {
		j = partitionWriting(ev, k, c, rep)
	} else {
		j = partitionIdle(ev, k, c, rep)
	}
	j.Partition = rep
	j.Checks = append(j.Checks, serverChecks(ev, rep)...)
	return j
}

// partitionWriting judges a client that was writing when the link broke.
func partitionWriting(ev *Evidence, k Rules, c deadPeerConf, rep *PartitionReport) Judgement {
	if ev.Wire == nil {
		return missing("no capture of the lab link (" + ev.WireErr + ")")
	}
	cev := cutWire(ev)
	w := cev.Wire
	healLo, healHi := ev.healSpan()
	turn, turnFrom := ackTurnaround(ev), "the longest before the fault"
	kin, retx := deliveryInstant(ev)
	if kin != nil && !retx.IsZero() {
		turn, turnFrom = kin.Lo.Sub(retx), "measured on the delivering exchange: the ACK against the retransmission it answered"
	}
	if w.Sent.IsZero() {
		rep.Predicted = "survived"
		return Judgement{Exp: model.Expectation{Errors: []string{model.Survived},
			Reason: "the client sent nothing the cut swallowed (all its data was acknowledged by the heal): the connection carries on"}}
	}
	// The ladder is the cut's: backoff resets after the heal are no ICMP
	// reverts.
	lev := *cev
	lev.Client = nil
	for _, e := range ev.Client {
		if !e.At.After(healHi) {
			lev.Client = append(lev.Client, e)
		}
	}
	l, lerr := measureLadder(&lev, c.ut, c.thin)
	if lerr != nil || len(l.Rungs) == 0 {
		// Only the first send (and a tail-loss probe) went into the cut: the
		// next transmission is a timer's after the heal, at the latest the
		// RTO armed at the last one.
		lastTx := later(w.Sent, lastOf(w.Retrans))
		base := lastTCPInfoBefore(ev.Client, ev.FaultStart)
		if base == nil {
			return missing("no TCP_INFO sample before the fault gives the RTO in force")
		}
		rto := time.Duration(base.RTOus) * time.Microsecond
		hi := lastTx.Add(rto + model.TimerSlack(rto, c.hz)).Add(turn)
		rep.Predicted = "survived"
		return Judgement{Exp: model.Expectation{Errors: []string{model.Survived}, Window: withReaction(ev, Span{Lo: healLo, Hi: hi, Bound: true,
			Basis: fmt.Sprintf("the cut ended before the first RTO retransmission: the next transmission after the heal (a tail-loss probe or the RTO %s armed at the last send) delivers, ACKed within the %s turnaround", fmtSecs(rto), fmtSecs(turn))}).window(ev.FaultAt),
			Reason: "no RTO retransmission before the heal, so no abort bound can be reached in the cut"}}
	}
	hc := HealCase{AbortCase: AbortCase{Ladder: l, Retries2: c.retries2, UserTimeout: c.ut, Thin: c.thin, HZ: c.hz},
		HealLo: healLo, HealHi: healHi, Turnaround: turn, TurnaroundFrom: turnFrom}
	out, err := k.healOf()(hc)
	switch {
	case errors.Is(err, errContradicted):
		j := Judgement{Ladder: l, Late: l.Late, Exp: model.Expectation{Errors: []string{model.ETIMEDOUT, model.EHOSTUNREACH, model.Survived}, Reason: "the ladder in the cut"}}
		j.Checks = []model.Result{{Verdict: model.Unexpected, Why: err.Error()}}
		return j
	case err != nil:
		j := missing("heal: " + err.Error())
		j.Ladder, j.Late = l, l.Late
		return j
	}
	_, from := boundOf(hc.AbortCase)
	if !out.Survives {
		rep.Predicted = "aborted"
		rep.ProbesInCut, rep.RetransInCut = countBefore(l.Probes, healLo), countBefore(rungTimes(l), healLo)
		j := abortJudgement(cev, k, c, l, nil, "")
		j.Exp.Reason = fmt.Sprintf("%s; the bound is reached before any retransmission after the heal (%.3f s after the cut): the client aborts and the connection does not survive",
			j.Exp.Reason, ev.Healed.Sub(ev.FaultAt).Seconds())
		return j
	}
	rep.Predicted = "survived"
	rep.ProbesInCut, rep.RetransInCut = countBefore(l.Probes, healLo), countBefore(rungTimes(l), healLo)
	j := Judgement{Ladder: l, Late: l.Late, Checks: []model.Result{cutCountCheck(hc)}}
	span := out.Delivery
	j.Exp = model.Expectation{Errors: []string{model.Survived}, Window: span.window(ev.FaultAt),
		Reason: fmt.Sprintf("unacked data, %s not reached in the cut: the first retransmission after the heal (%.3f s after the cut) delivers the queued data",
			from, ev.Healed.Sub(ev.FaultAt).Seconds())}
	if j.Kernel = kin; j.Kernel == nil {
		j.Exp.Window = withReaction(ev, span).window(ev.FaultAt)
	} else {
		at := j.Kernel.Lo
		rep.DeliveredS, rep.DeliveredAfterHealS = secs(at.Sub(ev.FaultAt)), secs(at.Sub(ev.Healed))
		rep.DeliveredBy = fmt.Sprintf("the retransmission at %.3f s (%.3f s after the heal; predicted: RTO retransmission %d)",
			retx.Sub(ev.FaultAt).Seconds(), retx.Sub(ev.Healed).Seconds(), out.Rung)
	}
	return j
}

// cutCountCheck compares the RTO retransmissions in the cut with the
// kernel's ladder from the first of them: on-time timers give the most
// expiries before the heal, the latest timers the fewest.
func cutCountCheck(c HealCase) model.Result {
	l := c.Ladder
	got := 0
	for _, r := range l.Rungs {
		if r.At.Before(c.HealLo) {
			got++
		}
	}
	count := func(late bool) int {
		n, t, rto := 1, l.RetransStamp(), l.Rungs[0].Armed
		for {
			d := timerLength(t.Sub(l.RetransStamp()), rto, c.UserTimeout)
			if late {
				d += model.TimerSlack(d, c.HZ) + l.MaxLate()
			}
			if t = t.Add(d); !t.Before(c.HealLo) {
				return n
			}
			n++
			rto = model.NextRTO(rto, l.Base, model.RTOMax, n, c.Thin)
		}
	}
	lo, hi := count(true), count(false)
	if got >= lo && got <= hi {
		return model.Result{Verdict: model.Expected, Why: fmt.Sprintf("%d RTO retransmissions in the cut, as the ladder has (%s)", got, countRange(lo, hi))}
	}
	return model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf("%d RTO retransmissions in the cut; the kernel's ladder from the first has %s", got, countRange(lo, hi))}
}

// partitionIdle judges an idle client: only keepalive sends anything.
func partitionIdle(ev *Evidence, k Rules, c deadPeerConf, rep *PartitionReport) Judgement {
	if !c.keepalive.Enabled {
		rep.Predicted = "survived"
		return Judgement{Exp: model.Expectation{Errors: []string{model.NoError},
			Reason: "idle client without keepalive (SO_KEEPALIVE off, read back): it sends nothing, so the cut passes unnoticed"}}
	}
	if ev.Wire == nil {
		return missing("keepalive: no capture of the lab link (" + ev.WireErr + ")")
	}
	cev := cutWire(ev)
	healLo, healHi := ev.healSpan()
	ka := c.keepalive
	kc := KeepaliveCase{LastRecv: cev.Wire.LastFromServer, Probes: cev.Wire.Probes, Keepalive: ka, UserTimeout: c.ut, HZ: c.hz}
	late := maxDur(keepaliveLate(kc))
	rep.ProbesInCut = countBefore(kc.Probes, healLo)
	// The next keepalive firing after the last probe in the cut (or the
	// first, the idle time after the last segment received).
	next, sent := kc.LastRecv.Add(ka.Idle), len(kc.Probes)
	if sent > 0 {
		next = kc.Probes[sent-1].Add(ka.Intvl)
	}
	if sent == 0 && !next.Before(healHi) {
		rep.Predicted = "survived"
		return Judgement{Exp: model.Expectation{Errors: []string{model.NoError}, Reason: fmt.Sprintf(
			"idle client: its first keepalive probe is due %s after the last segment received, after the heal: nothing was sent into the cut", fmtSecs(ka.Idle))}}
	}
	if c.ut > 0 {
		return missing("keepalive with TCP_USER_TIMEOUT across a heal is not modelled")
	}
	slack := model.TimerSlack(ka.Intvl, c.hz) + late
	for i := sent + 1; ; i++ {
		lo, hi := next, next.Add(slack*time.Duration(i-sent))
		switch {
		case i > ka.Probes && hi.Before(healLo):
			rep.Predicted = "aborted"
			return keepaliveExpect(cev, k, c)
		case i > ka.Probes:
			return missing(fmt.Sprintf("%v: the keepalive abort is due at the heal", errTooClose))
		case !lo.Before(healHi):
			rep.Predicted = "survived"
			span := Span{Lo: lo, Hi: hi.Add(ackTurnaround(ev)), Nominal: lo, Basis: fmt.Sprintf(
				"keepalive probe %d of %d, the first after the heal, answered within the turnaround measured before the fault", i, ka.Probes)}
			j := Judgement{Exp: model.Expectation{Errors: []string{model.Survived}, Window: span.window(ev.FaultAt),
				Reason: "idle client with keepalive: a probe after the heal, before the probe count is reached, is answered"}}
			j.Kernel, _ = deliveryInstant(ev)
			if j.Kernel != nil {
				j.Kernel.Source, j.Kernel.Act = "the server's answer to the keepalive probe on the client's wire", "had its probe answered"
			}
			return j
		case !hi.Before(healLo):
			return missing(fmt.Sprintf("%v: keepalive probe %d is due at the heal", errTooClose, i))
		}
		next = next.Add(ka.Intvl)
	}
}

// partitionSurvival is the client's observation that the connection
// survived: its first read after the heal (the echo of a line the cut had
// held up). An idle client reads nothing; its survival is the server's
// answer to its keepalive probe on its wire.
func partitionSurvival(ev *Evidence) (Observation, bool) {
	if ev.Healed.IsZero() {
		return Observation{}, false
	}
	lo, _ := ev.healSpan()
	for _, e := range ev.Client {
		if e.Ev == "read" && !e.At.Before(lo) {
			return Observation{Error: model.Survived, Event: "read", At: e.At, Uncert: e.Uncert}, true
		}
	}
	if ev.Opt.Idle && ev.Wire != nil {
		if in, _ := deliveryInstant(ev); in != nil {
			return Observation{Error: model.Survived, Event: "wire", At: in.Lo}, true
		}
	}
	return Observation{}, false
}

// partitionBound watches after the heal for up to two RTOs in force (the
// first expiry after the heal delivers or aborts), or two keepalive
// intervals for an idle client, plus half a minute.
func partitionBound(ev *Evidence) time.Duration {
	b := ev.Opt.Down + 30*time.Second
	c, err := deadPeerConfig(ev)
	if err == nil && !c.unacked {
		if c.keepalive.Enabled {
			b += 2 * c.keepalive.Intvl
		}
		return b
	}
	rto := model.RTOMax
	for i := len(ev.Client) - 1; i >= 0; i-- {
		if ti := ev.Client[i].TCPInfo; ti != nil {
			rto = min(model.RTOMax, time.Duration(ti.RTOus)*time.Microsecond)
			break
		}
	}
	return b + 2*rto
}

// partitionFollowup: when the client aborted, the server — which saw
// nothing of the cut — still holds an ESTABLISHED socket. Make it send: kill
// the process serving the connection, whose FIN the client's kernel, which
// has no socket left, answers with RST.
func partitionFollowup(ctx context.Context, r *Run) string {
	if ob := r.evidence().observation(); ob.Error == "" {
		return ""
	}
	pid, err := r.serverChild()
	if err != nil {
		return "the server's end was left open: " + err.Error()
	}
	t0 := time.Now()
	if _, err := r.sh(ctx, lab.RoleServer, fmt.Sprintf("kill -9 %d", pid)); err != nil {
		return fmt.Sprintf("could not close the server's end (kill -9 %d): %v", pid, err)
	}
	r.hostEventAt("server_closed", t0, map[string]any{"pid": pid, "why": "make the server send on the half-open connection"})
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second): // The FIN, the RST, and a sample of each.
	}
	return fmt.Sprintf("the server's connection process (pid %d) was killed %.3f s after the heal, so that its kernel sends on the half-open connection (a FIN)",
		pid, t0.Sub(r.healedAt()).Seconds())
}

// healedAt is the heal instant, zero before it.
func (r *Run) healedAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut == nil || r.cut.heal.Issued.IsZero() {
		return time.Time{}
	}
	return r.cut.heal.At()
}

// PartitionReport is what a partition run shows besides the verdict: the
// cut as measured, what went into it, when the queued data crossed, and
// what the server's kernel saw.
type PartitionReport struct {
	// Mechanism says how the link was cut.
	Mechanism string `json:"mechanism"`
	// DownS is the cut's length, heal instant less cut instant, and
	// DownUncertS its ± bound (both edges' bounds).
	DownS       float64 `json:"down_s"`
	DownUncertS float64 `json:"down_uncert_s"`
	// HealUncertS is the ± bound on the heal instant.
	HealUncertS float64 `json:"heal_uncert_s"`
	// Predicted is the rules' outcome: survived, aborted, or empty when
	// undecided.
	Predicted string `json:"predicted,omitempty"`
	// ProbesInCut and RetransInCut count what the client sent into the cut
	// on its wire: tail-loss or keepalive probes, and RTO retransmissions.
	ProbesInCut  int `json:"probes_in_cut"`
	RetransInCut int `json:"retransmissions_in_cut"`
	// DeliveredS is when the server's ACK of the queued data reached the
	// client's wire, after the cut and after the heal, and DeliveredBy which
	// retransmission carried it.
	DeliveredS          *float64 `json:"delivered_s,omitempty"`
	DeliveredAfterHealS *float64 `json:"delivered_after_heal_s,omitempty"`
	DeliveredBy         string   `json:"delivered_by,omitempty"`
	// ServerStates are the server socket's states through the cut, from its
	// kernel (sock_diag), and Server says in one line what it saw, during
	// the cut and after.
	ServerStates []string `json:"server_states,omitempty"`
	Server       string   `json:"server,omitempty"`
}

// partitionReport measures the cut from the evidence.
func partitionReport(ev *Evidence) *PartitionReport {
	rep := &PartitionReport{Mechanism: vms.CutMechanism}
	if ev.Healed.IsZero() {
		return rep
	}
	rep.DownS = ev.Healed.Sub(ev.FaultAt).Seconds()
	rep.DownUncertS = (ev.HealUncert + ev.FaultUncert).Seconds()
	rep.HealUncertS = ev.HealUncert.Seconds()
	return rep
}

// serverSock returns the server's sock_diag samples of the connection.
func serverSock(ev *Evidence) []GuestEvent {
	con, ok := ev.connectEvent()
	if !ok {
		return nil
	}
	var out []GuestEvent
	for _, e := range ev.ServerSocks {
		if e.Ev == "sock" || e.Ev == "sock_gone" {
			if e.Peer == con.Local {
				out = append(out, e)
			}
		}
	}
	return out
}

// sockState is a sample's TCP state ("gone" for sock_gone).
func sockState(e GuestEvent) string {
	if e.Ev == "sock_gone" {
		return "gone"
	}
	if e.TCPInfo != nil {
		return e.TCPInfo.State
	}
	return "?"
}

// serverChecks reads the server's side: its socket must stay ESTABLISHED
// through the cut (nothing reaches it); after a client abort, the server's
// next segment must draw the client kernel's RST. Evidence that was not
// recorded gives no check, only the report.
func serverChecks(ev *Evidence, rep *PartitionReport) []model.Result {
	socks := serverSock(ev)
	var checks []model.Result
	if len(socks) == 0 {
		rep.Server = "no sock_diag samples of the server's socket recorded"
	} else {
		var states []string
		var atCut string
		for _, e := range socks {
			switch {
			case !e.At.After(ev.FaultAt):
				atCut = sockState(e)
			case !e.At.After(ev.Healed):
				states = append(states, sockState(e))
			}
		}
		if atCut != "" {
			states = append([]string{atCut}, states...)
		}
		rep.ServerStates = slices.Compact(states)
		if len(rep.ServerStates) == 1 && rep.ServerStates[0] == "ESTABLISHED" {
			rep.Server = "ESTABLISHED through the cut"
			checks = append(checks, model.Result{Verdict: model.Expected, Why: "the server's socket stayed ESTABLISHED through the cut (sock_diag): nothing of the cut reached it"})
		} else {
			rep.Server = "through the cut: " + strings.Join(rep.ServerStates, " → ")
			checks = append(checks, model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf(
				"the server's socket went %s during the cut (sock_diag); a cut link leaves it alone", strings.Join(rep.ServerStates, " → "))})
		}
		var after []string
		last := rep.ServerStates[len(rep.ServerStates)-1]
		for _, e := range socks {
			if st := sockState(e); e.At.After(ev.Healed) && st != last {
				after = append(after, fmt.Sprintf("%s at %.3f s", st, e.At.Sub(ev.FaultAt).Seconds()))
				last = st
			}
		}
		if len(after) > 0 {
			rep.Server += "; after the heal: " + strings.Join(after, ", ")
		}
	}
	ob := ev.observation()
	if ob.Error == "" || ev.Wire == nil {
		return checks
	}
	// The client aborted: the server's FIN after the heal must draw a RST
	// from the client's kernel.
	var fin time.Time
	for _, s := range ev.Wire.Segments {
		switch {
		case !s.Out && s.Has(tcpFIN) && s.At.After(ev.Healed) && fin.IsZero():
			fin = s.At
		case s.Out && s.Has(tcpRST) && !fin.IsZero():
			rep.Server += fmt.Sprintf("; its FIN at %.3f s drew the client kernel's RST %.1f ms later", fin.Sub(ev.FaultAt).Seconds(), float64(s.At.Sub(fin))/1e6)
			return append(checks, model.Result{Verdict: model.Expected, Why: fmt.Sprintf(
				"after the client's abort the server's FIN (%.3f s after the cut) drew the client kernel's RST: it had no socket left", fin.Sub(ev.FaultAt).Seconds())})
		}
	}
	if !fin.IsZero() {
		return append(checks, model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf(
			"after the client's abort the server's FIN (%.3f s after the cut) drew no RST on the client's wire", fin.Sub(ev.FaultAt).Seconds())})
	}
	return checks
}

// countBefore counts the instants of ts before t.
func countBefore(ts []time.Time, t time.Time) int {
	n := 0
	for _, x := range ts {
		if x.Before(t) {
			n++
		}
	}
	return n
}

// rungTimes lists the ladder's RTO retransmissions.
func rungTimes(l *Ladder) []time.Time {
	out := make([]time.Time, len(l.Rungs))
	for i, r := range l.Rungs {
		out[i] = r.At
	}
	return out
}

// lastOf is the last instant of ts, zero when empty.
func lastOf(ts []time.Time) time.Time {
	if len(ts) == 0 {
		return time.Time{}
	}
	return ts[len(ts)-1]
}
