package scenario

import (
	"fmt"
	"time"

	"github.com/hostlab/hostlab/lab/model"
)

// echoRTT is the longest a line took before the fault from the client's
// write to its read of the echo (both on the client's clock): how long this
// run's client, link and server took to turn a segment around. Windows that
// wait on a write's answer widen by it.
func echoRTT(ev *Evidence) time.Duration {
	var rtt time.Duration
	var wrote time.Time
	for _, e := range ev.Client {
		if !ev.FaultStart.IsZero() && !e.At.Before(ev.FaultStart) {
			break
		}
		switch e.Ev {
		case "write":
			wrote = e.At
		case "read":
			if !wrote.IsZero() {
				rtt = max(rtt, e.At.Sub(wrote))
				wrote = time.Time{}
			}
		}
	}
	return rtt
}

// reaction is the longest the client program took before the fault to
// report a segment its kernel had received: each segment from the server
// on the client's wire (the kernel's stamp) against the client's next
// connect or read event. A client learns of an abort, a RST or a FIN the
// same way, so windows whose end is the client's report widen by it.
func reaction(ev *Evidence) (time.Duration, bool) {
	if ev.Wire == nil {
		return 0, false
	}
	var worst time.Duration
	found := false
	i := 0
	for _, s := range ev.Wire.Segments {
		if s.Out || !s.At.Before(ev.FaultStart) || (s.Len == 0 && !s.Has(tcpSYN)) {
			continue
		}
		for i < len(ev.Client) && ev.Client[i].At.Before(s.At) {
			i++
		}
		for j := i; j < len(ev.Client); j++ {
			e := ev.Client[j]
			if !e.At.Before(ev.FaultStart) {
				break
			}
			if e.Ev == "read" || e.Ev == "connect" {
				worst, found = max(worst, e.At.Sub(s.At)), true
				break
			}
		}
	}
	return worst, found
}

// withReaction widens a window's end by the client's measured reaction.
func withReaction(ev *Evidence, s Span) Span {
	if r, ok := reaction(ev); ok {
		s.Hi = s.Hi.Add(r)
		s.Basis += fmt.Sprintf("; the client reports within %s of its kernel (measured before the fault)", fmtSecs(r))
	} else {
		s.Basis += "; the client's own reaction was not measured"
	}
	return s
}

// clientState is what a str_cli was doing at an instant: blocked in its
// read for an echo, or between lines or a line's writes, with writesLeft
// writes to make before it reads again.
type clientState struct {
	inRead     bool
	writesLeft int
}

// clientAt reads the client's state at t from its capture: each line is
// per data segments from the client (one write each: TCP_NODELAY, short
// lines), and it is done when the server's data has caught up with them —
// the client's read then returns the whole echo whatever comes after, so
// the wire, not the client's later event stamps, says where it stood.
func clientAt(ev *Evidence, t time.Time, per int) clientState {
	writes, sent, echoed := 0, 0, 0
	var cNxt, sNxt uint32
	cHave, sHave := false, false
	if ev.Wire != nil {
		for _, s := range ev.Wire.Segments {
			if s.At.After(t) {
				break // Data the FIN itself carries counts: the read returns it first.
			}
			if s.Len == 0 {
				continue
			}
			end := s.Seq + uint32(s.Len)
			if s.Out {
				// Only new data counts: a retransmission is no new write.
				if !cHave || seqAfter(end, cNxt) {
					if cHave {
						sent += int(end - cNxt)
					} else {
						sent += s.Len
					}
					cNxt, cHave = end, true
					writes++
				}
				continue
			}
			if !sHave || seqAfter(end, sNxt) {
				if sHave {
					echoed += int(end - sNxt)
				} else {
					echoed += s.Len
				}
				sNxt, sHave = end, true
			}
			if writes >= per && echoed >= sent {
				writes = 0
			}
		}
	}
	if writes >= per && echoed < sent {
		return clientState{inRead: true}
	}
	return clientState{writesLeft: per - writes}
}

// writesPerLine is the client's writes per line.
func writesPerLine(ev *Evidence) int { return max(ev.WritesPerLine, 1) }

// newData lists the client's segments that carried new data (not
// retransmissions), in order: one per write of a short line.
func newData(ev *Evidence) []Segment {
	var out []Segment
	var nxt uint32
	have := false
	if ev.Wire == nil {
		return nil
	}
	for _, s := range ev.Wire.Segments {
		if !s.Out || s.Len == 0 {
			continue
		}
		end := s.Seq + uint32(s.Len)
		if !have || seqAfter(end, nxt) {
			out = append(out, s)
			nxt, have = end, true
		}
	}
	return out
}

// nthWriteAfter is the client's n-th write (1-based) of those whose data
// reached the wire at or after t: the wire orders writes against the FIN,
// the client's own event (stamped after the call returns) dates it.
func nthWriteAfter(ev *Evidence, t time.Time, n int) (GuestEvent, bool) {
	before := 0
	for _, s := range newData(ev) {
		if s.At.Before(t) {
			before++
		}
	}
	i := 0
	for _, e := range ev.Client {
		if e.Ev != "write" {
			continue
		}
		if i++; i == before+n {
			return e, true
		}
	}
	return GuestEvent{}, false
}

// finDetect is when a client learns of the server's FIN (fin, its arrival
// on the client's wire): an event-driven client, or a str_cli blocked in its
// read for an echo, as the FIN arrives; a str_cli asleep between lines (or
// between a line's writes) only at the read after its next write, which
// draws the RST that may be processed first (ECONNRESET). The instant its
// kernel gives it the answer is returned too; the program reports later.
func finDetect(ev *Evidence, fin time.Time) (Span, *Instant, []string, string, error) {
	st := clientAt(ev, fin, writesPerLine(ev))
	if ev.Opt.Read == "event" || st.inRead {
		why := "an event-driven client is always in poll, so the FIN ends it as it arrives"
		if ev.Opt.Read != "event" {
			why = "str_cli was blocked in its read for an echo when the FIN arrived, so the FIN ends it at once"
		}
		return Span{Lo: fin, Hi: fin, Nominal: fin, Basis: "the FIN's arrival on the client's wire"},
			&Instant{Lo: fin, Hi: fin, Source: "the server's FIN on the client's wire"}, []string{model.EOF}, why, nil
	}
	rtt := echoRTT(ev)
	if rtt <= 0 {
		return Span{}, nil, nil, "", fmt.Errorf("no echoed line before the fault to measure the turnaround")
	}
	w, ok := nthWriteAfter(ev, fin, st.writesLeft)
	if !ok {
		return Span{}, nil, nil, "", fmt.Errorf("the client did not write after the server's FIN")
	}
	return Span{Lo: w.At, Hi: w.At.Add(rtt), Nominal: w.At, Slack: w.Uncert,
			Basis: fmt.Sprintf("the client's write %.3f s after the fault, the last of its line after the FIN, plus up to the %s turnaround measured before the fault",
				w.At.Sub(ev.FaultAt).Seconds(), fmtSecs(rtt))},
		&Instant{Lo: w.At.Add(-w.Uncert), Hi: w.At.Add(w.Uncert), Source: "the client's write after the FIN, which its read follows"},
		[]string{model.EOF, model.ECONNRESET},
		"str_cli, asleep when the FIN arrived, notices only when it next writes (RST) and reads: EOF, or ECONNRESET if the RST is processed first", nil
}

// writesBetween counts the client's writes after from and before to: by
// their data on the wire where there is a capture (the client's event is
// stamped after its call returns, which a loaded guest may delay), else by
// its events.
func writesBetween(ev *Evidence, from, to time.Time) int {
	n := 0
	if ev.Wire != nil {
		for _, s := range newData(ev) {
			if s.At.After(from) && s.At.Before(to) {
				n++
			}
		}
		return n
	}
	for _, e := range ev.Client {
		if e.Ev == "write" && e.At.After(from) && e.At.Before(to) {
			n++
		}
	}
	return n
}

// finCheck checks the server's FIN arrived within span (the mechanism's
// account of when the server's socket closes).
func finCheck(fin time.Time, s Span, fault time.Time) model.Result {
	return closeCheck(fin, "FIN", s, fault)
}

// closeCheck checks the server's closing segment (FIN or RST) arrived
// within span.
func closeCheck(at time.Time, what string, s Span, fault time.Time) model.Result {
	t := at.Sub(fault).Seconds()
	kind := "window"
	if s.Bound {
		kind = "bound"
	}
	switch {
	case at.Before(s.Lo.Add(-s.Slack)):
		return model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf("the server's %s at %.3f s came before %s %s (%s)", what, t, kind, s.window(fault), s.Basis)}
	case at.After(s.Hi.Add(s.Slack)):
		return model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf("the server's %s at %.3f s came after %s %s (%s)", what, t, kind, s.window(fault), s.Basis)}
	}
	return model.Result{Verdict: model.Expected, Why: fmt.Sprintf("the server's %s at %.3f s, within %s %s (%s)", what, t, kind, s.window(fault), s.Basis)}
}

// finJudgement expects the client to learn that the server's socket
// closed, which the mechanism puts within closeSpan: a FIN, or — when the
// server's socket still held data it had not read — a RST (tcp_close
// resets a connection whose receive queue is not empty).
func finJudgement(ev *Evidence, closeSpan Span) Judgement {
	if ev.Wire == nil {
		return missing("no capture of the lab link (" + ev.WireErr + ")")
	}
	w := ev.Wire
	if w.FIN.IsZero() && !w.RST.IsZero() {
		return unreadRSTJudgement(ev, closeSpan)
	}
	if w.FIN.IsZero() {
		return missing("neither a FIN nor a RST from the server on the client's wire")
	}
	span, kernel, errs, why, err := finDetect(ev, w.FIN)
	if err != nil {
		return missing(err.Error())
	}
	j := Judgement{
		Exp:    model.Expectation{Errors: errs, Reason: why, Window: span.window(ev.FaultAt)},
		Checks: []model.Result{finCheck(w.FIN, closeSpan, ev.FaultAt)},
		Kernel: kernel,
	}
	// str_cli reads right after each write; an event-driven client's writer
	// runs on its own, so only the former may not write before it learns.
	if ob := ev.observation(); ev.Opt.Read != "event" && ob.Error != "" && kernel.Hi.Before(ob.At) {
		if n := writesBetween(ev, kernel.Hi, ob.At); n > 0 {
			j.Checks = append(j.Checks, model.Result{Verdict: model.Unexpected, Why: fmt.Sprintf(
				"the client wrote %d more time(s) after it should have learnt (%s) and before it did", n, kernel.Source)})
		}
	}
	return j
}

// unreadRSTJudgement: the server's socket closed with data it had not read
// — the client's last line had reached it (acknowledged) but was never
// echoed — so its kernel sent RST instead of FIN, and the client, blocked
// in its read, gets ECONNRESET as the RST arrives.
func unreadRSTJudgement(ev *Evidence, closeSpan Span) Judgement {
	w := ev.Wire
	rst := w.RST
	sent, echoed, lastOut := echoAccount(ev, rst)
	j := Judgement{Kernel: &Instant{Lo: rst, Hi: rst, Source: "the server's RST on the client's wire"}}
	if echoed >= sent {
		j.Exp = model.Expectation{Errors: []string{model.EOF, model.ECONNRESET}, Reason: "the server's socket closed"}
		j.Checks = []model.Result{{Verdict: model.Unexpected, Why: fmt.Sprintf(
			"the server's socket closed with RST at %.3f s and no FIN, yet it had echoed everything the client sent: a closing socket sends FIN unless data is left unread",
			rst.Sub(ev.FaultAt).Seconds())}}
		return j
	}
	j.Exp = model.Expectation{Errors: []string{model.ECONNRESET},
		Reason: fmt.Sprintf("the server never echoed %d of the bytes the client sent (the last %s): its socket closed with them unread, so its kernel sent RST, not FIN, and the client's read fails as the RST arrives",
			sent-echoed, relFault(lastOut.Sub(ev.FaultAt))),
		Window: Span{Lo: rst, Hi: rst, Nominal: rst, Basis: "the RST's arrival on the client's wire"}.window(ev.FaultAt)}
	j.Checks = []model.Result{closeCheck(rst, "RST", closeSpan, ev.FaultAt)}
	return j
}

// echoAccount counts, before t, the new data bytes the client sent and the
// server sent back (retransmissions do not count), and when the client's
// last new data left.
func echoAccount(ev *Evidence, t time.Time) (sent, echoed int, lastOut time.Time) {
	var cNxt, sNxt uint32
	cHave, sHave := false, false
	for _, s := range ev.Wire.Segments {
		if s.At.After(t) {
			break
		}
		if s.Len == 0 {
			continue
		}
		end := s.Seq + uint32(s.Len)
		if s.Out {
			if !cHave {
				sent += s.Len
			} else if seqAfter(end, cNxt) {
				sent += int(end - cNxt)
			} else {
				continue
			}
			cNxt, cHave, lastOut = end, true, s.At
			continue
		}
		if !sHave {
			echoed += s.Len
		} else if seqAfter(end, sNxt) {
			echoed += int(end - sNxt)
		} else {
			continue
		}
		sNxt, sHave = end, true
	}
	return sent, echoed, lastOut
}

// killFINSpan is when a SIGKILLed server's FIN reaches the client: the
// kernel closes the socket as the process dies — at the kill, or as soon as
// the dying task is scheduled, before its parent reaps it (the echo
// server's child_exit event) — and the FIN crosses the link within a
// turnaround measured before the fault.
func killFINSpan(ev *Evidence) Span {
	rtt := echoRTT(ev)
	s := Span{Lo: ev.FaultAt.Add(-ev.FaultUncert), Hi: ev.FaultAt.Add(ev.FaultUncert + rtt),
		Basis: "the kill's instant, plus the turnaround measured before the fault"}
	for _, e := range ev.Server {
		if e.Ev == "child_exit" && !e.At.Before(ev.FaultStart) {
			if reaped := e.At.Add(e.Uncert + rtt); reaped.After(s.Hi) {
				s.Hi = reaped
				s.Basis = fmt.Sprintf("from the kill's instant to the server reaping its child %.3f s after it, plus the turnaround measured before the fault",
					e.At.Sub(ev.FaultAt).Seconds())
			}
			break
		}
	}
	return s
}

// relFault says how far an instant lies from the fault, in words.
func relFault(d time.Duration) string {
	if d < 0 {
		return fmt.Sprintf("%.3f s before the fault", -d.Seconds())
	}
	return fmt.Sprintf("%.3f s after the fault", d.Seconds())
}
