package scenario

import (
	"fmt"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab/model"
)

// Rung is one RTO retransmission on the wire and the RTO the kernel armed
// after it.
type Rung struct {
	// At is the retransmission's time on the wire (host clock).
	At time.Time `json:"at"`
	// Armed is icsk_rto after this retransmission (tcpi_rto), before any
	// clamp to TCP_USER_TIMEOUT.
	Armed time.Duration `json:"armed_ns"`
	// ArmedFrom says where Armed comes from: "tcp_info" or "model".
	ArmedFrom string `json:"armed_from"`
	// Queued is true for a retransmission the kernel made (TCP_INFO counts
	// it) that never reached the wire: queued behind a neighbour resolution
	// that failed. At is then the first TCP_INFO sample counting it, a bound.
	Queued bool `json:"queued,omitempty"`
}

// Ladder is a dead peer's retransmission ladder as measured in a run: what
// the client's capture shows, labelled with the client's TCP_INFO.
type Ladder struct {
	// Sent is the first transmission of the unacknowledged segment.
	Sent time.Time `json:"sent"`
	// Probes are tail-loss probes: retransmissions before the first RTO
	// retransmission, which neither set retrans_stamp nor back off.
	Probes []time.Time `json:"probes,omitempty"`
	// Rungs are the RTO retransmissions; the first is retrans_stamp.
	Rungs []Rung `json:"rungs"`
	// Base is the RTO in force before the fault (tcpi_rto).
	Base time.Duration `json:"base_rto_ns"`
	// Reverts counts backoff decreases after the fault (ICMP unreachables
	// reverting backoff steps, RFC 6069).
	Reverts int `json:"reverts,omitempty"`
	// Late lists each measured timer's lateness: its firing on the wire
	// against the expiry of the timer armed for it.
	Late []time.Duration `json:"late_ns,omitempty"`
}

// RetransStamp is the first RTO retransmission.
func (l *Ladder) RetransStamp() time.Time { return l.Rungs[0].At }

// Last is the last RTO retransmission.
func (l *Ladder) Last() Rung { return l.Rungs[len(l.Rungs)-1] }

// MaxLate is the largest measured lateness (0 if none is measured or all
// are negative).
func (l *Ladder) MaxLate() time.Duration {
	var m time.Duration
	for _, d := range l.Late {
		m = max(m, d)
	}
	return m
}

// lateness summarises measured timer lateness for result.json.
func lateness(late []time.Duration) *Lateness {
	if len(late) == 0 {
		return nil
	}
	out := &Lateness{Timers: len(late), Source: "wire"}
	var sum, mx time.Duration
	for i, d := range late {
		sum += d
		if i == 0 || d > mx {
			mx = d
		}
	}
	out.MaxS, out.TotalS, out.MeanS = mx.Seconds(), sum.Seconds(), (sum / time.Duration(len(late))).Seconds()
	return out
}

// tcpInfoAfter returns the client's TCP_INFO samples at or after t.
func tcpInfoSamples(evs []GuestEvent) []GuestEvent {
	var out []GuestEvent
	for _, e := range evs {
		if e.TCPInfo != nil {
			out = append(out, e)
		}
	}
	return out
}

// measureLadder labels the capture's retransmissions of the unacknowledged
// segment: tail-loss probes before the first RTO retransmission (the first
// TCP_INFO sample with tcpi_retransmits >= 1 follows it within a sampling
// period, and an RTO is never shorter than 200 ms), then RTO rungs with the
// RTO armed after each, and measures each timer's lateness.
func measureLadder(ev *Evidence, ut time.Duration, thin bool) (*Ladder, error) {
	if ev.Wire == nil {
		return nil, fmt.Errorf("no capture of the lab link (%s)", ev.WireErr)
	}
	w := ev.Wire
	if len(w.Retrans) == 0 || w.Sent.IsZero() {
		return nil, fmt.Errorf("the client's capture shows no retransmission of unacknowledged data")
	}
	infos := tcpInfoSamples(ev.Client)
	l := &Ladder{Sent: w.Sent}
	for _, s := range infos {
		if s.At.Before(ev.FaultStart) {
			l.Base = time.Duration(s.TCPInfo.RTOus) * time.Microsecond
		}
	}
	if l.Base <= 0 {
		return nil, fmt.Errorf("no TCP_INFO sample before the fault gives the RTO in force")
	}
	// The first RTO retransmission is the last one on the wire at or
	// before the first sample that counts a retransmission.
	first := -1
	for _, s := range infos {
		if s.TCPInfo.Retransmits >= 1 && !s.At.Before(w.Sent) {
			for i, t := range w.Retrans {
				if !t.After(s.At.Add(s.Uncert)) {
					first = i
				}
			}
			break
		}
	}
	if first < 0 {
		return nil, fmt.Errorf("no TCP_INFO sample counts an RTO retransmission, so the probes cannot be told from the rungs")
	}
	l.Probes = append(l.Probes, w.Retrans[:first]...)
	prevBackoff := -1
	reverted := map[int]bool{} // rung index after which a revert happened
	for i, t := range w.Retrans[first:] {
		n := i + 1
		r := Rung{At: t}
		for _, s := range infos {
			if s.At.Before(t) {
				continue
			}
			if int(s.TCPInfo.Retransmits) == n {
				r.Armed, r.ArmedFrom = time.Duration(s.TCPInfo.RTOus)*time.Microsecond, "tcp_info"
			}
			break
		}
		if r.ArmedFrom == "" {
			prev := l.Base
			if i > 0 {
				prev = l.Rungs[i-1].Armed
			}
			r.Armed, r.ArmedFrom = model.NextRTO(prev, l.Base, model.RTOMax, n, thin), "model"
		}
		l.Rungs = append(l.Rungs, r)
	}
	// Retransmissions TCP_INFO counts beyond the wire's were queued behind a
	// failed neighbour resolution and dropped: the first sample counting
	// each bounds when it was made.
	for _, s := range infos {
		n := int(s.TCPInfo.Retransmits)
		if s.At.Before(ev.FaultStart) || s.TCPInfo.Unacked == 0 || n <= len(l.Rungs) {
			continue
		}
		for len(l.Rungs) < n {
			l.Rungs = append(l.Rungs, Rung{At: s.At.Add(s.Uncert), Armed: time.Duration(s.TCPInfo.RTOus) * time.Microsecond, ArmedFrom: "tcp_info", Queued: true})
		}
	}
	for _, s := range infos {
		if s.At.Before(ev.FaultStart) || s.TCPInfo.Unacked == 0 {
			continue
		}
		b := int(s.TCPInfo.Backoff)
		if prevBackoff >= 0 && b < prevBackoff {
			l.Reverts++
			markRevert(l, reverted, s.At)
		}
		prevBackoff = b
	}
	// An ICMP unreachable (from a router, or the client's own failed
	// neighbour resolution) re-arms the timer running when it came.
	for _, ic := range ev.ICMP {
		if ic.At.After(ev.FaultStart) {
			markRevert(l, reverted, ic.At)
		}
	}
	// Lateness: the first rung against the probe (or the send) plus the
	// RTO in force; each later rung against the timer armed at the one
	// before, clamped to the user timeout.
	from := l.Sent
	if len(l.Probes) > 0 {
		from = l.Probes[len(l.Probes)-1]
	}
	l.Late = append(l.Late, l.Rungs[0].At.Sub(from.Add(l.Base)))
	rs := l.Rungs[0].At
	for i := 1; i < len(l.Rungs); i++ {
		if reverted[i-1] || l.Rungs[i].Queued || l.Rungs[i-1].Queued {
			continue // An ICMP re-armed this timer: not a plain expiry.
		}
		prev := l.Rungs[i-1]
		armed := timerLength(prev.At.Sub(rs), prev.Armed, ut)
		l.Late = append(l.Late, l.Rungs[i].At.Sub(prev.At.Add(armed)))
	}
	return l, nil
}

// timerLength is the retransmit timer armed at elapsed (since
// retrans_stamp) with RTO rto: tcp_clamp_rto_to_user_timeout's clamp to
// the time left before the user timeout.
func timerLength(elapsed, rto, ut time.Duration) time.Duration {
	if ut <= 0 {
		return rto
	}
	rem := ut - elapsed
	if rem <= 0 {
		return time.Second / time.Duration(model.DefaultHZ)
	}
	return min(rto, rem)
}

// lastTCPInfoBefore is the newest TCP_INFO sample before t.
func lastTCPInfoBefore(evs []GuestEvent, t time.Time) *echo.TCPInfo {
	var ti *echo.TCPInfo
	for _, e := range evs {
		if e.TCPInfo != nil && e.At.Before(t) {
			ti = e.TCPInfo
		}
	}
	return ti
}

// markRevert marks the rung whose timer was running at t (the last one at
// or before it) as re-armed: its expiry is no plain timer's.
func markRevert(l *Ladder, reverted map[int]bool, t time.Time) {
	last := -1
	for i, r := range l.Rungs {
		if !r.At.After(t) {
			last = i
		}
	}
	if last >= 0 {
		reverted[last] = true
	}
}
