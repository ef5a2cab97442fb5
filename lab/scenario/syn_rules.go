package scenario

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hostlab/hostlab/lab/model"
)

// SynSample is one TCP_INFO sample of the connecting socket.
type SynSample struct {
	At          time.Time
	Uncert      time.Duration
	State       string
	Retransmits int
	RTO         time.Duration
}

// SynCase is a connect to a peer that is powered off or has no listener,
// as a run measured it: the client's capture of the attempt, its socket's
// TCP_INFO while it waited, and the settings that decide the outcome.
type SynCase struct {
	// First is retrans_stamp, the connect's first frame on the wire: its
	// SYN, or the ARP request sent while the SYN waited for the address.
	First time.Time
	// SYNs are the SYN transmissions on the wire.
	SYNs []time.Time
	// Info are the connecting socket's TCP_INFO samples.
	Info []SynSample
	// RST is the peer's RST answering a SYN (zero: none).
	RST time.Time
	// Resolutions are the client's unanswered runs of broadcast ARP
	// requests for the peer, each an INCOMPLETE entry a SYN waits on.
	Resolutions [][]time.Time
	// Retries is tcp_syn_retries; Linear tcp_syn_linear_timeouts, 0 on
	// kernels without it (LinearKnown false).
	Retries, Linear int
	LinearKnown     bool
	// UserTimeout is TCP_USER_TIMEOUT (0: unset).
	UserTimeout time.Duration
	// Neigh is the client's neighbour configuration for the lab link.
	Neigh model.Neigh
	// HZ is the client kernel's tick rate.
	HZ int
}

// SynOutcome is how a rule says the connect ends: the errors it allows,
// the window of the kernel's end, why, and its checks of the mechanism.
type SynOutcome struct {
	Span   Span
	Errors []string
	Why    string
	Checks []model.Result
	Late   []time.Duration
	Plan   model.SynPlan
}

// synRule is the SYN_SENT rule with switches for the wrong models.
type synRule struct {
	// noLinear doubles the SYN timer from the first retransmission,
	// whatever tcp_syn_linear_timeouts says.
	noLinear bool
	// countOnly ends SYN_SENT by the retransmission count alone, without
	// tcp_model_timeout's time bound.
	countOnly bool
	// atLast fails the connect at its last retransmission instead of one
	// timer after it.
	atLast bool
	// noNeigh ignores the neighbour layer: ETIMEDOUT after the SYN retries,
	// whatever ARP did (a BSD stack's answer in UNP).
	noNeigh bool
	// closedDrops has a host without a listener drop the SYN silently.
	closedDrops bool
}

// kernelSyn is Linux's rule (net/ipv4/tcp_timer.c tcp_write_timeout and
// tcp_retransmit_timer, net/core/neighbour.c).
func kernelSyn(c SynCase) (SynOutcome, error) { return synRule{}.apply(c) }

// Wrong SYN rules; a sound verdict rejects each on some recorded run.
var (
	// WrongSynNoLinear doubles the SYN timer at once on kernels with
	// tcp_syn_linear_timeouts (6.5 and later) too.
	WrongSynNoLinear = synWrong("SYN timer doubling without the linear phase", synRule{noLinear: true})
	// WrongSynCountOnly ends SYN_SENT after tcp_syn_retries (+ linear)
	// retransmissions only, without the time bound.
	WrongSynCountOnly = synWrong("SYN retries by count only, no time bound", synRule{countOnly: true})
	// WrongSynAbortAtLast fails the connect at the last retransmission.
	WrongSynAbortAtLast = synWrong("connect fails at the last SYN retransmission", synRule{atLast: true})
	// WrongSynNoNeighbour ignores a failed ARP resolution: ETIMEDOUT.
	WrongSynNoNeighbour = synWrong("ETIMEDOUT after the SYN retries whatever ARP did", synRule{noNeigh: true})
	// WrongClosedPortDrops has a host without a listener drop the SYN.
	WrongClosedPortDrops = synWrong("a closed port drops the SYN (no RST)", synRule{closedDrops: true})
)

// synWrong is a wrong rule set: the kernel's rules but for the SYN rule.
func synWrong(name string, r synRule) Rules {
	return Rules{Name: name, Abort: kernelAbort, Keepalive: kernelKeepalive, Reset: kernelReset, Syn: r.apply, Persist: kernelPersist}
}

// apply predicts the connect's end from the case.
func (r synRule) apply(c SynCase) (SynOutcome, error) {
	if c.First.IsZero() {
		return SynOutcome{}, fmt.Errorf("the client's capture shows neither a SYN nor an ARP request of the connect")
	}
	if !c.RST.IsZero() && !r.closedDrops {
		return refused(c)
	}
	linear := c.Linear
	if r.noLinear {
		linear = 0
	}
	plan, err := model.PlanConnect(model.SynInput{Retries: c.Retries, Linear: linear, UserTimeout: c.UserTimeout})
	if err != nil {
		return SynOutcome{}, err
	}
	if r.countOnly && c.UserTimeout == 0 {
		plan = countOnlyPlan(c.Retries, linear)
	}
	o := SynOutcome{Plan: plan}
	syn, err := r.synSpan(c, plan, linear, &o)
	if err != nil {
		return o, err
	}
	o.Span, o.Errors = syn, []string{model.ETIMEDOUT}
	o.Why = fmt.Sprintf("no answer to the SYN: %s; %s", planWhy(plan, c, linear), syn.Basis)
	if r.noNeigh || len(c.Resolutions) == 0 {
		return o, nil
	}
	nb, late, checks := neighSpan(c)
	o.Late = append(o.Late, late...)
	o.Checks = append(o.Checks, checks...)
	errs, how := failErrors(c, plan, nb)
	switch {
	case nb.Hi.Before(syn.Lo):
		o.Span, o.Errors = nb, errs
		o.Why = fmt.Sprintf("the SYN waited on ARP for the silent server and the resolution failed first: %s; %s (the SYN timer alone: %s)", nb.Basis, how, planWhy(plan, c, linear))
	case syn.Hi.Before(nb.Lo):
		o.Why += fmt.Sprintf("; a resolution of the server's address was under way but fails only later (%s)", nb.Basis)
	default:
		o.Span = Span{Lo: earlierT(nb.Lo, syn.Lo), Hi: later(nb.Hi, syn.Hi), Basis: "either comes first: " + nb.Basis + "; or " + syn.Basis}
		o.Errors = union(errs, []string{model.ETIMEDOUT})
		o.Why = "the ARP resolution's failure (" + how + ") and the SYN timer's end (ETIMEDOUT) fall together"
	}
	return o, nil
}

// failErrors is what the connect reports when the neighbour entry its SYN
// waits on fails (net/ipv4/tcp_ipv4.c tcp_v4_err): the kernel's ICMP host
// unreachable first reverts one backoff step (RFC 6069, tcp_ld_RTO_revert)
// — the SYN's RTO becomes TCP_TIMEOUT_INIT << (backoff-1), counted from
// the queued SYN's transmission, which started the resolution (a
// retransmission while it waits is skipped: the SYN is still in the host's
// queue, tcp_retransmit_skb's -EBUSY, though icsk_retransmits counts it) —
// and when that RTO has already run out it runs the retransmit timer at
// once; if tcp_write_timeout then finds the retries spent (count or time
// bound) the connect ends with ETIMEDOUT, at the failure's instant.
// Otherwise, still in SYN_SENT, the ICMP is a hard error: EHOSTUNREACH.
// Both from the retransmissions the evidence counts before the failure,
// within its window.
func failErrors(c SynCase, p model.SynPlan, nb Span) ([]string, string) {
	queued := c.Resolutions[0][0]
	rungs := synRungs(c)
	var errs []string
	var hows []string
	for k := 0; k <= len(rungs); k++ {
		// k retransmissions before the failure: possible when the k-th may
		// precede it and the (k+1)-th may follow it.
		if k > 0 && rungs[k-1].Lo.After(nb.Hi) {
			break
		}
		if k < len(rungs) && rungs[k].Hi.Before(nb.Lo) {
			continue
		}
		if k == 0 {
			errs = union(errs, []string{model.EHOSTUNREACH})
			hows = append(hows, "no retransmission yet, no backoff to revert: EHOSTUNREACH")
			continue
		}
		rto := min(model.RTOInit<<(k-1), model.RTOMax)
		remHi, remLo := rto-nb.Lo.Sub(queued), rto-nb.Hi.Sub(queued)
		if remHi > 0 {
			errs = union(errs, []string{model.EHOSTUNREACH})
			hows = append(hows, fmt.Sprintf("after %s the reverted RTO (%s) has not run out: the ICMP is a hard error in SYN_SENT, EHOSTUNREACH", plural(k, "retransmission"), fmtSecs(rto)))
		}
		if remLo <= 0 {
			spent := k >= p.MaxRetransmits || !nb.Lo.Before(c.First.Add(p.Bound))
			maybe := !spent && !nb.Hi.Before(c.First.Add(p.Bound))
			if spent || maybe {
				errs = union(errs, []string{model.ETIMEDOUT})
				hows = append(hows, fmt.Sprintf("after %s the reverted RTO (%s) has run out, so the retransmit timer runs at once and finds the retries spent: ETIMEDOUT at the failure", plural(k, "retransmission"), fmtSecs(rto)))
			}
			if !spent {
				errs = union(errs, []string{model.EHOSTUNREACH})
				hows = append(hows, fmt.Sprintf("after %s the reverted RTO (%s) has run out: one more SYN, then the ICMP's hard error, EHOSTUNREACH", plural(k, "retransmission"), fmtSecs(rto)))
			}
		}
	}
	if len(errs) == 0 {
		return []string{model.EHOSTUNREACH}, "the ICMP host unreachable is a hard error in SYN_SENT: EHOSTUNREACH"
	}
	return errs, strings.Join(hows, "; or ")
}

// union appends the names of b not in a.
func union(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}

// countOnlyPlan is the SYN ladder without the time bound.
func countOnlyPlan(retries, linear int) model.SynPlan {
	p := model.SynPlan{MaxRetransmits: retries + linear, Bound: 1 << 62, By: "count"}
	rto, t := model.RTOInit, time.Duration(0)
	for k := 0; ; k++ {
		p.Sends, p.Armed = append(p.Sends, t), append(p.Armed, rto)
		t += rto
		if k >= p.MaxRetransmits {
			p.Abort = t
			return p
		}
		rto = model.NextSynRTO(rto, k+1, linear)
	}
}

// planWhy says what the plan is.
func planWhy(p model.SynPlan, c SynCase, linear int) string {
	lin := "no tcp_syn_linear_timeouts on this kernel"
	if c.LinearKnown {
		lin = fmt.Sprintf("tcp_syn_linear_timeouts=%d", linear)
	}
	by := fmt.Sprintf("the count (%d retransmissions) ends it", p.MaxRetransmits)
	if p.By == "time" {
		by = fmt.Sprintf("the time bound %s ends it after %d retransmissions, before the count %d", fmtSecs(p.Bound), p.Retransmits(), p.MaxRetransmits)
	}
	return fmt.Sprintf("tcp_syn_retries=%d, %s: ETIMEDOUT %s after the first SYN; %s", c.Retries, lin, fmtSecs(p.Abort), by)
}

// synRung is a SYN retransmission as the evidence brackets it.
type synRung struct {
	Lo, Hi time.Time
	Wire   bool
}

// synRungs lists the retransmissions the evidence shows: on the wire
// exactly, or, for a SYN that waited on ARP, between the TCP_INFO samples
// around the count's step.
func synRungs(c SynCase) []synRung {
	var rungs []synRung
	for _, t := range c.SYNs {
		if t.After(c.First) {
			rungs = append(rungs, synRung{Lo: t, Hi: t, Wire: true})
		}
	}
	if len(c.SYNs) > 0 && c.SYNs[0].After(c.First) {
		// The first SYN waited on ARP: what the wire shows later are the
		// queued SYNs flushed at the reply, not timed transmissions.
		rungs = nil
	}
	prev := c.First
	for _, s := range c.Info {
		for s.Retransmits > len(rungs) {
			rungs = append(rungs, synRung{Lo: prev, Hi: s.At.Add(s.Uncert)})
		}
		prev = s.At.Add(-s.Uncert)
	}
	return rungs
}

// synSpan is the SYN timer's end of the connect: from the last
// retransmission the evidence shows, the kernel's ladder runs on to the
// first expiry where the count is reached or the time bound passed; each
// timer may fire late by its wheel granule plus the largest lateness
// measured on this run's wire.
func (r synRule) synSpan(c SynCase, p model.SynPlan, linear int, o *SynOutcome) (Span, error) {
	rungs := synRungs(c)
	bound := c.First.Add(p.Bound)
	// armed is the timer after the k-th retransmission, along the plan and
	// past it (a rung the time bound might have spared).
	armed := func(k int) time.Duration {
		if k < len(p.Armed) {
			return p.Armed[k]
		}
		rto := p.Armed[len(p.Armed)-1]
		for j := len(p.Armed); j <= k; j++ {
			rto = model.NextSynRTO(rto, j, linear)
		}
		return rto
	}
	for k, g := range rungs {
		if k+1 > p.MaxRetransmits {
			return Span{}, fmt.Errorf("%d SYN retransmissions, more than the %d the count allows: %w", len(rungs), p.MaxRetransmits, errContradicted)
		}
		if !g.Lo.Before(bound.Add(jiffyOf(c.HZ) + 2*time.Millisecond)) {
			return Span{}, fmt.Errorf("SYN retransmission %d at %.3f s is past the time bound %s, where the kernel gives up: %w",
				k+1, g.Lo.Sub(c.First).Seconds(), fmtSecs(p.Bound), errContradicted)
		}
	}
	// Lateness of the timers the wire times exactly.
	prevAt, prevExact := c.First, true
	for k, g := range rungs {
		if g.Wire && prevExact {
			o.Late = append(o.Late, g.Lo.Sub(prevAt.Add(armed(k))))
		}
		prevAt, prevExact = g.Lo, g.Wire
	}
	o.Checks = append(o.Checks, synCountCheck(c, p, rungs), synRTOCheck(c, p))
	maxLate := maxDur(o.Late)
	allow := func(d time.Duration) time.Duration { return model.TimerSlack(d, c.HZ) + maxLate }
	n := len(rungs)
	lo, hi := c.First, c.First
	if n > 0 {
		lo, hi = rungs[n-1].Lo, rungs[n-1].Hi
	}
	if r.atLast {
		at := c.First.Add(p.Sends[len(p.Sends)-1])
		if n == len(p.Sends)-1 {
			at = lo
		}
		return Span{Lo: at, Hi: at.Add(maxLate), Nominal: at, Basis: "at the last SYN retransmission"}, nil
	}
	var earliest time.Time
	for k := n; k <= p.MaxRetransmits; k++ {
		rto := armed(k)
		eLo, eHi := lo.Add(rto), hi.Add(rto+allow(rto))
		last := k >= p.MaxRetransmits
		if !eHi.Before(bound) && earliest.IsZero() {
			earliest = later(bound, eLo)
		}
		if last || !eLo.Before(bound) {
			if last && earliest.IsZero() {
				earliest = eLo
			}
			what := fmt.Sprintf("the expiry after retransmission %d (count %d reached)", k, p.MaxRetransmits)
			if !last {
				what = fmt.Sprintf("the first expiry at or past the time bound %s", fmtSecs(p.Bound))
			}
			from := fmt.Sprintf("the last SYN the evidence shows (retransmission %d of %d) + RTO %s", n, p.Retransmits(), fmtSecs(rto))
			if k > n {
				from = fmt.Sprintf("the ladder run on from the last SYN the evidence shows (retransmission %d of %d) to a last RTO of %s", n, p.Retransmits(), fmtSecs(rto))
			}
			return Span{Lo: earliest, Hi: eHi, Nominal: later(eLo, earliest), Basis: fmt.Sprintf(
				"%s; %s, timers late by up to their granule + %s measured", what, from, fmtSecs(maxLate))}, nil
		}
		lo, hi = eLo, earlierT(eHi, bound)
	}
	return Span{}, fmt.Errorf("no end along the SYN ladder")
}

// synCountCheck compares the SYN retransmissions with the plan's.
func synCountCheck(c SynCase, p model.SynPlan, rungs []synRung) model.Result {
	n, wire := len(rungs), 0
	for _, g := range rungs {
		if g.Wire {
			wire++
		}
	}
	src := "on the wire"
	if wire < n {
		src = fmt.Sprintf("(%d on the wire, %d counted by TCP_INFO, not on the wire: the SYN waited on ARP)", wire, n-wire)
	}
	if n <= p.Retransmits() {
		return model.Result{Verdict: model.Expected, Why: fmt.Sprintf("%s %s, within the ladder's %d", plural(n, "SYN retransmission"), src, p.Retransmits())}
	}
	return model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf("%s %s; the ladder has %d", plural(n, "SYN retransmission"), src, p.Retransmits())}
}

// synRTOCheck compares the RTO the kernel armed after each retransmission
// (TCP_INFO) with the plan's: linear or doubling.
func synRTOCheck(c SynCase, p model.SynPlan) model.Result {
	seen := 0
	for _, s := range c.Info {
		k := s.Retransmits
		if s.State != "SYN_SENT" || k >= len(p.Armed) || s.RTO == 0 || c.UserTimeout > 0 {
			continue
		}
		want := p.Armed[k]
		if d := s.RTO - want; d > jiffyOf(c.HZ) || d < -jiffyOf(c.HZ) {
			return model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf(
				"TCP_INFO shows RTO %s after %d SYN retransmissions; the ladder arms %s", fmtSecs(s.RTO), k, fmtSecs(want))}
		}
		seen = max(seen, k)
	}
	if seen == 0 {
		return model.Result{Verdict: model.Expected, Why: "the SYN timer's RTO was not sampled past the first SYN"}
	}
	return model.Result{Verdict: model.Expected, Why: fmt.Sprintf("the RTO TCP_INFO shows after each of %s is the ladder's", plural(seen, "SYN retransmission"))}
}

// neighSpan is when the first unanswered resolution of the server's
// address fails: its requests one interval apart, FAILED one interval
// (plus app_solicit's) after the last; the queued SYN then draws EHOSTUNREACH.
func neighSpan(c SynCase) (Span, []time.Duration, []model.Result) {
	run := c.Resolutions[0]
	n, iv := c.Neigh.Requests(), c.Neigh.Interval()
	var late []time.Duration
	for i := 1; i < len(run); i++ {
		late = append(late, run[i].Sub(run[i-1].Add(iv)))
	}
	maxLate := maxDur(late)
	left := max(n+max(c.Neigh.AppSolicit, 0)-(len(run)-1), 1)
	last := run[len(run)-1]
	lo := last.Add(time.Duration(left) * iv)
	hi := lo.Add(time.Duration(left) * (model.TimerSlack(iv, c.HZ) + maxLate))
	check := model.Result{Verdict: model.Expected, Why: fmt.Sprintf("%d ARP requests for the server, %s apart, as mcast_solicit=%d sends", len(run), fmtSecs(iv), n)}
	if len(run) > n {
		check = model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf("%d ARP requests for the server in one resolution; mcast_solicit=%d sends %d", len(run), n, n)}
	}
	return Span{Lo: lo, Hi: hi, Nominal: lo, Basis: fmt.Sprintf(
		"the neighbour entry fails %s after its first request (mcast_solicit=%d, app_solicit=%d, retrans_time %s), sent %.3f s after the connect's first frame: the kernel answers the queued SYN with ICMP host unreachable; timers late by up to their granule + %s measured",
		fmtSecs(c.Neigh.ResolveFail()), n, c.Neigh.AppSolicit, fmtSecs(iv), run[0].Sub(c.First).Seconds(), fmtSecs(maxLate))}, late, []model.Result{check}
}

// refused: a live host without a listener answers the SYN with RST
// (tcp_v4_send_reset), so connect fails with ECONNREFUSED as the RST
// arrives, before the SYN's timer would retransmit it.
func refused(c SynCase) (SynOutcome, error) {
	var syn time.Time
	for _, t := range c.SYNs {
		if !t.After(c.RST) {
			syn = t
		}
	}
	if syn.IsZero() {
		return SynOutcome{}, fmt.Errorf("the server's RST precedes every SYN on the wire")
	}
	rto := model.RTOInit
	check := model.Result{Verdict: model.Expected, Why: fmt.Sprintf("the RST answered the first SYN %.1f ms after it", float64(c.RST.Sub(syn))/1e6)}
	if len(c.SYNs) > 1 && !c.SYNs[1].After(c.RST) {
		check = model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf("the RST came only after %d SYNs: the live host did not answer the first", countUpTo(c.SYNs, c.RST))}
	}
	return SynOutcome{Errors: []string{model.ECONNREFUSED}, Checks: []model.Result{check},
		Why:  "the server's host lives but nothing listens on the port: its kernel answers the SYN with RST",
		Span: Span{Lo: syn, Hi: syn.Add(rto), Bound: true, Basis: fmt.Sprintf("the RST answering the SYN, before the SYN's timer (%s) retransmits it", fmtSecs(rto))}}, nil
}

// countUpTo counts the instants of ts at or before t.
func countUpTo(ts []time.Time, t time.Time) int {
	n := 0
	for _, x := range ts {
		if !x.After(t) {
			n++
		}
	}
	return n
}

// jiffyOf is one tick at hz.
func jiffyOf(hz int) time.Duration {
	if hz <= 0 {
		hz = model.DefaultHZ
	}
	return time.Second / time.Duration(hz)
}

// errorsIsContradicted reports whether a rule's error says the evidence
// contradicts it.
func errorsIsContradicted(err error) bool { return errors.Is(err, errContradicted) }

// plural says "1 retransmission", "2 retransmissions".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
