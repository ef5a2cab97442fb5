package scenario

// hang-server — the host lives, the program does not (UNP 5.12's cousin).
//
// Property: SIGSTOP to the server's connection process leaves its socket
// open and its kernel running, but nothing reads. A client that keeps
// writing (--flood) fills the server's receive buffer; the window closes
// and the client's kernel probes it with the persist timer (backing off
// from the RTO). The live kernel answers the probes — at most one
// out-of-window ACK per tcp_invalid_ratelimit — and every answer resets the
// count of unanswered probes, so without TCP_USER_TIMEOUT the connection
// never dies (keepalive is suspended while data waits): the client is
// expected to survive the watch period. With TCP_USER_TIMEOUT it ends with
// ETIMEDOUT at the user timeout counted from the first probe. SIGCONT heals.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
)

// floodBlock is the block hang-server's client writes per interval.
const floodBlock = 16384

// hangWatch is how long hang-server watches a client without a user
// timeout (--max-wait overrides it).
const hangWatch = 60 * time.Second

var hangServer = Scenario{
	Name:    "hang-server",
	Summary: "SIGSTOP to the server's connection process while the client floods it; SIGCONT heals",
	Property: "the server's window closes and the client probes it; the live kernel answers every probe, " +
		"so only TCP_USER_TIMEOUT ends the connection (ETIMEDOUT) — without it the client survives",
	ClientFlags: func(bool) []string { return []string{"--flood", fmt.Sprint(floodBlock)} },
	Defaults: func(o *Options) {
		if o.Interval == 0 {
			o.Interval = 20 * time.Millisecond
		}
	},
	Check: func(o Options) error {
		switch {
		case o.Client == ClientClassic:
			return fmt.Errorf("--client classic does not apply to hang-server: it needs a client that keeps writing (--flood), give go (the default) or your own")
		case o.Idle:
			return fmt.Errorf("--idle does not apply to hang-server: the client must fill the server's window")
		}
		return nil
	},
	Fault:  stopChild,
	Expect: hangServerExpect,
	Bound: func(ev *Evidence) time.Duration {
		if ut := ev.Opt.UserTimeout; ut > 0 {
			return ut + hangWatch
		}
		return hangWatch
	},
	Heal: contChild,
}

// stopChild sends SIGSTOP to the server child serving the client, between
// two of the server guest's CLOCK_MONOTONIC stamps, and pins the fault to
// them.
func stopChild(ctx context.Context, r *Run) error {
	pid, err := r.serverChild()
	if err != nil {
		return err
	}
	c, err := r.guest(ctx, lab.RoleServer)
	if err != nil {
		return err
	}
	var out []byte
	err = r.markFault("hang-server", func() error {
		var err error
		if out, err = c.Output(ctx, signalScript("STOP", pid)); err != nil {
			return fmt.Errorf("stop server child %d: %w", pid, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.pinSignal(ctx, pid, string(out), "stopped", "SIGSTOP")
	return nil
}

// contChild heals hang-server: SIGCONT to the stopped child.
func contChild(ctx context.Context, r *Run) error {
	pid, err := r.serverChild()
	if err != nil {
		return err
	}
	if _, err := r.sh(ctx, lab.RoleServer, fmt.Sprintf("kill -CONT %d", pid)); err != nil {
		return fmt.Errorf("continue server child %d: %w", pid, err)
	}
	r.hostEvent("continued", map[string]any{"pid": pid})
	return nil
}

// signalScript sends SIG to pid between two reads of the server guest's
// CLOCK_MONOTONIC (as killScript) and prints "stamps BEFORE_NS AFTER_NS".
func signalScript(sig string, pid int) string {
	return fmt.Sprintf(`{ read -r _; read -r _; read -r _ _ a _; } </proc/timer_list
kill -%s %d; k=$?
{ read -r _; read -r _; read -r _ _ b _; } </proc/timer_list
echo "stamps $a $b"
exit $k`, sig, pid)
}

// pinSignal pins the fault to a signal's guest stamps (signalScript's
// output), placed with the server's clock measured again after it.
func (r *Run) pinSignal(ctx context.Context, pid int, out, ev, sig string) {
	before, after, ok := parseKillStamps(out)
	if !ok {
		r.note(fmt.Sprintf("the %s of server child %d carried no guest clock stamps (%q): the fault instant is bounded by the SSH command only", sig, pid, strings.TrimSpace(out)))
		return
	}
	r.resyncServer(ctx)
	clk, ok := r.clock[lab.RoleServer]
	if !ok {
		r.note("no server clock fit: the fault instant is bounded by the SSH command only")
		return
	}
	from, ufrom := clk.HostTimeFromMono(before)
	to, uto := clk.HostTimeFromMono(after)
	from, to = from.Add(-ufrom), to.Add(uto)
	r.mu.Lock()
	start, end := r.faultStart, r.faultEnd
	r.mu.Unlock()
	from, to = later(from, start), earlierT(to, end)
	if !from.Before(to) {
		r.note(fmt.Sprintf("the %s's guest clock stamps fall outside the SSH command that sent it: the fault instant is bounded by the SSH command only", sig))
		return
	}
	r.pinFault(ev, from, to, "the "+sig+" between two server CLOCK_MONOTONIC stamps, placed with the server's clock fit",
		map[string]any{"pid": pid, "before_mono_ns": before, "after_mono_ns": after})
}

// persistCase reads a hang-server run's evidence into the persist rule's
// case.
func persistCase(ev *Evidence) (PersistCase, error) {
	c := PersistCase{HZ: model.DefaultHZ}
	var ok bool
	if c.Retries2, ok = ev.sysctlInt(lab.RoleClient, "net.ipv4.tcp_retries2"); !ok {
		return c, fmt.Errorf("the client's tcp_retries2 was not read back")
	}
	rl, ok := ev.sysctlInt(lab.RoleServer, "net.ipv4.tcp_invalid_ratelimit")
	if !ok {
		return c, fmt.Errorf("the server's tcp_invalid_ratelimit was not read back")
	}
	c.RateLimit = time.Duration(rl) * time.Millisecond
	con, ok := ev.connectEvent()
	if !ok || con.Sockopts == nil {
		return c, fmt.Errorf("the client's socket options were not read back after connect")
	}
	c.UserTimeout = time.Duration(con.Sockopts.UserTimeoutMS) * time.Millisecond
	if ev.Wire == nil {
		return c, fmt.Errorf("no capture of the lab link (%s)", ev.WireErr)
	}
	// snd_una from the server's ACKs; a probe is a segment without data at
	// snd_una-1 once the window is shut.
	var una uint32
	haveUna := false
	for _, s := range ev.Wire.Segments {
		if !s.Out {
			if s.Has(tcpACK) && (!haveUna || seqAfter(s.Ack, una)) {
				una, haveUna = s.Ack, true
			}
			if !s.At.Before(ev.FaultStart) && s.Win == 0 && c.Closed.IsZero() {
				c.Closed = s.At
			}
			if !c.Closed.IsZero() && len(c.Probes) > 0 && c.Answers[len(c.Probes)-1].IsZero() && s.At.After(c.Probes[len(c.Probes)-1]) {
				c.Answers[len(c.Probes)-1] = s.At
			}
			continue
		}
		if !c.Closed.IsZero() && s.Len == 0 && !s.Has(tcpSYN|tcpFIN|tcpRST) && haveUna && s.Seq == una-1 && s.At.After(c.Closed) {
			c.Probes = append(c.Probes, s.At)
			c.Answers = append(c.Answers, time.Time{})
		}
	}
	if c.Closed.IsZero() {
		return c, fmt.Errorf("the server's window never closed on the client's wire")
	}
	for _, e := range ev.Client {
		if e.TCPInfo == nil || e.At.Before(ev.FaultStart) || (len(c.Probes) > 0 && !e.At.Before(c.Probes[0])) {
			continue
		}
		c.Base = max(time.Duration(e.TCPInfo.RTOus)*time.Microsecond, model.RTOMin)
		c.Backoff = int(e.TCPInfo.Backoff)
	}
	if ob := ev.observation(); !ob.At.IsZero() {
		c.End = ob.At
	} else if !ev.Stopped.IsZero() {
		c.End = ev.Stopped
	}
	return c, nil
}

// hangServerExpect applies the persist rule to the run's wire.
func hangServerExpect(ev *Evidence, k Rules) Judgement {
	c, err := persistCase(ev)
	if err != nil {
		return missing(err.Error())
	}
	rule := k.Persist
	if rule == nil {
		rule = Kernel.Persist
	}
	o, err := rule(c)
	j := Judgement{Late: o.Late}
	switch {
	case errorsIsContradicted(err):
		j.Exp = model.Expectation{Errors: []string{model.ETIMEDOUT, model.NoError}, Reason: "a sender probing a closed window"}
		j.Checks = []model.Result{{Verdict: model.Unexpected, Why: err.Error()}}
		return j
	case err != nil:
		return missing("persist: " + err.Error())
	}
	closed := model.Result{Verdict: model.Expected, Why: fmt.Sprintf("the server's receive window closed %.3f s after the stop (its zero-window ACK on the client's wire)",
		c.Closed.Sub(ev.FaultAt).Seconds())}
	j.Checks = append([]model.Result{closed}, o.Checks...)
	if rq := serverQueueCheck(ev); rq != nil {
		j.Checks = append(j.Checks, *rq)
	}
	j.Exp = model.Expectation{Errors: o.Errors, Reason: o.Why}
	if o.Span != nil {
		j.Exp.Window = o.Span.window(ev.FaultAt)
		j.Kernel = kernelEnd(ev)
	}
	return j
}

// serverQueueCheck reads the server kernel's view of the stopped
// connection (sock_diag): its receive queue holds what nobody reads.
func serverQueueCheck(ev *Evidence) *model.Result {
	con, ok := ev.connectEvent()
	if !ok {
		return nil
	}
	var most, rcvbuf uint32
	seen := false
	for _, s := range ev.Sockdiag[lab.RoleServer] {
		if s.Peer != con.Local || s.At.Before(ev.FaultStart) || s.State != "ESTABLISHED" {
			continue
		}
		seen = true
		if s.RxQueue > most {
			most = s.RxQueue
			if s.Mem != nil {
				rcvbuf = s.Mem.Rcvbuf
			}
		}
	}
	if !seen {
		return nil
	}
	if most == 0 {
		return &model.Result{Verdict: model.Unexpected, Why: "the server's kernel shows nothing queued unread while its window was shut (sock_diag)"}
	}
	return &model.Result{Verdict: model.Expected, Why: fmt.Sprintf("the server's kernel held up to %d bytes unread (sock_diag rx_queue; SO_RCVBUF %d)", most, rcvbuf)}
}
