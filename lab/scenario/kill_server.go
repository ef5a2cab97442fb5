package scenario

// kill-server — UNP 5.12, server process terminated.
//
// Property: SIGKILL to the process serving the connection makes its kernel
// close the socket with FIN. A client blocked elsewhere (str_cli in its sleep
// between lines) does not notice; its next write is accepted and answered by
// RST, and its read returns EOF (the FIN is queued first), or ECONNRESET if
// the RST was processed before the read. An event-driven client sees EOF as
// soon as the FIN arrives.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/clocksync"
	"github.com/hostlab/hostlab/lab/timeline"
)

var killServer = Scenario{
	Name:     "kill-server",
	Summary:  "SIGKILL to the server's connection process",
	Property: "a killed server process closes with FIN; the client learns at its next read: EOF, or ECONNRESET after the RST its next write draws",
	Own:      []string{"sigpipe-ignore"},
	Fault:    killChild("kill-server"),
	Expect:   func(ev *Evidence, k Rules) Judgement { return finJudgement(ev, killFINSpan(ev)) },
	Bound:    func(ev *Evidence) time.Duration { return 30*time.Second + 2*ev.Opt.Interval },
}

// killChild is the fault of kill-server and sigpipe: SIGKILL to the server
// child serving the client's connection.
func killChild(name string) func(context.Context, *Run) error {
	return func(ctx context.Context, r *Run) error {
		pid, err := r.serverChild()
		if err != nil {
			return err
		}
		c, err := r.guest(ctx, lab.RoleServer)
		if err != nil {
			return err
		}
		if err := r.afterNextEcho(ctx); err != nil {
			return err
		}
		var out []byte
		err = r.markFault(name, func() error {
			var err error
			if out, err = c.Output(ctx, killScript(pid)); err != nil {
				return fmt.Errorf("kill server child %d: %w", pid, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		r.pinKill(ctx, pid, string(out))
		return nil
	}
}

// killScript sends SIGKILL to pid between two reads of the server guest's
// CLOCK_MONOTONIC and prints "stamps BEFORE_NS AFTER_NS"; the kill's exit
// status is the script's. The stamps are the "now at" line of
// /proc/timer_list (ktime_get, the clock hostlab-clock reads), read with
// shell builtins so nothing forks between them. SIGKILL wakes the victim,
// and a woken task normally preempts the killer before the second stamp
// (its exit, its parent's reaping: 7–60 ms measured under TCG); so the
// victim runs at nice 19 and the shell at -20 until the second stamp, then
// the victim is put back to nice 0, where the echo server runs, for its
// exit. The stamps are then about 1–2 ms apart, against 25–55 ms (and
// hundreds under load) for the whole SSH command. (Busybox's renice takes
// an absolute value; with -n it would add.)
func killScript(pid int) string {
	return fmt.Sprintf(`renice 19 -p %[1]d >/dev/null && renice -20 -p $$ >/dev/null || exit 1
{ read -r _; read -r _; read -r _ _ a _; } </proc/timer_list
kill -9 %[1]d; k=$?
{ read -r _; read -r _; read -r _ _ b _; } </proc/timer_list
renice 0 -p %[1]d >/dev/null 2>&1
echo "stamps $a $b"
exit $k`, pid)
}

// pinKill pins the fault to the kill's guest stamps (killScript's output).
// It first measures the server's clock again — the server lives on — so
// the fit spans the kill instead of extrapolating to it, then places the
// stamps on the host axis and clips them to the SSH command's window.
// Without usable stamps it says so in the notes, and the instant stays
// bounded by the SSH command alone.
func (r *Run) pinKill(ctx context.Context, pid int, out string) {
	before, after, ok := parseKillStamps(out)
	if !ok {
		r.note(fmt.Sprintf("the kill of server child %d carried no guest clock stamps (%q): the fault instant is bounded by the SSH command only", pid, strings.TrimSpace(out)))
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
	if from.Before(start) {
		from = start
	}
	if to.After(end) {
		to = end
	}
	if !from.Before(to) {
		r.note(fmt.Sprintf("the kill's guest clock stamps (%d..%d ns, ± %v/%v) fall outside the SSH command that sent it: the fault instant is bounded by the SSH command only",
			before, after, ufrom, uto))
		return
	}
	r.pinFault("killed", from, to, "the kill between two server CLOCK_MONOTONIC stamps, placed with the server's clock fit",
		map[string]any{"pid": pid, "before_mono_ns": before, "after_mono_ns": after, "guest_window_ms": float64(after-before) / 1e6})
}

// parseKillStamps reads killScript's "stamps BEFORE_NS AFTER_NS" line.
func parseKillStamps(out string) (before, after int64, ok bool) {
	for _, line := range strings.Split(out, "\n") {
		if n, _ := fmt.Sscanf(line, "stamps %d %d", &before, &after); n == 2 {
			return before, after, before > 0 && after >= before
		}
	}
	return 0, 0, false
}

// resyncServer adds server clock samples taken after the kill to those of
// the run's start, so the fit spans the kill; on failure the first fit
// stays, noted.
func (r *Run) resyncServer(ctx context.Context) {
	c, err := r.guest(ctx, lab.RoleServer)
	if err != nil {
		r.note("server clock resync: " + err.Error())
		return
	}
	more, err := clocksync.Measure(ctx, c, 20)
	if err != nil {
		r.note("server clock resync: " + err.Error())
		return
	}
	all := append(append([]timeline.ClockSample(nil), r.samples[lab.RoleServer]...), more...)
	clk, err := timeline.EstimateClock(all)
	if err != nil {
		r.note("server clock fit over the kill: " + err.Error())
		return
	}
	r.clock[lab.RoleServer], r.samples[lab.RoleServer] = clk, all
}

// afterNextEcho waits for the client's next echoed line, so a fault lands
// while str_cli sleeps before its next line — as in UNP, where the client
// sits in fgets when the server dies — and not between the two writes of a
// line or while the echo is in flight. An idle client has no lines to wait
// for.
func (r *Run) afterNextEcho(ctx context.Context) error {
	if r.Opt.Idle {
		return nil
	}
	per := max(r.Scenario.WritesPerLine, 1)
	n := echoedLines(r.client.snapshot(), per)
	wctx, cancel := context.WithTimeout(ctx, 2*r.Opt.Interval+10*time.Second)
	defer cancel()
	return r.client.waitFor(wctx, "the next echo", func(evs []echo.Event) bool {
		return echoedLines(evs, per) > n
	})
}

// echoedLines counts the lines echoed whole: a read that brings the bytes
// read up to the bytes written, once the line's writes (per) are all done.
// A loaded server may echo a line's first part before its second is
// written; that is not the end of the line.
func echoedLines(evs []echo.Event, per int) int {
	lines, writes, wrote, read := 0, 0, 0, 0
	for _, e := range evs {
		switch e.Ev {
		case "write":
			writes++
			wrote += e.Bytes
		case "read":
			read += e.Bytes
			if writes >= per && read >= wrote && wrote > 0 {
				lines++
				writes = 0
			}
		}
	}
	return lines
}
