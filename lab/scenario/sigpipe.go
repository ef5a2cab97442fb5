package scenario

// sigpipe — UNP 5.13, SIGPIPE.
//
// Property: after the server process is killed (FIN), the client writes twice
// without reading: the first write draws an RST, the second finds the socket
// reset and raises SIGPIPE, whose default action kills the client before it
// can print anything. A client that ignores SIGPIPE gets EPIPE from write
// instead; a Go client always does (Go ignores SIGPIPE on sockets).

import (
	"time"

	"github.com/hostlab/hostlab/lab/model"
)

var sigpipe = Scenario{
	Name:     "sigpipe",
	Summary:  "SIGKILL to the server's connection process; the client writes twice",
	Property: "the second write to a reset socket raises SIGPIPE (default: the client dies) or fails with EPIPE (ignored)",
	Defaults: func(o *Options) {
		if o.Client == "" {
			o.Client = ClientClassic
		}
	},
	Own:           []string{"sigpipe-ignore"},
	WritesPerLine: 2,
	ClientFlags: func(classic bool) []string {
		// Two writes 200 ms apart after each line, without reading between.
		if classic {
			return []string{"--twice", "--gap-ms", "200"}
		}
		return []string{"--twice", "--gap", "200ms"}
	},
	Fault: killChild("sigpipe"),
	Expect: func(ev *Evidence, k Rules) Judgement {
		why := "the classic client ignores SIGPIPE, so the second write fails with EPIPE"
		errs := []string{model.EPIPE}
		switch {
		case ev.Opt.Client == ClientClassic && !ev.Opt.SigpipeIgnore:
			errs, why = []string{model.SIGPIPE}, "the second write to a reset socket raises SIGPIPE; its default action kills the C client"
		case ev.Opt.Client != ClientClassic:
			why = "Go ignores SIGPIPE on sockets, so the second write fails with EPIPE"
		}
		if ev.Wire == nil || ev.Wire.FIN.IsZero() {
			return finJudgement(ev, killFINSpan(ev)) // No FIN: missing, or a RST for unread data.
		}
		// SIGPIPE needs two writes after the FIN: the first draws the RST,
		// the second meets it. A FIN that arrives while the client reads an
		// echo, or between a line's two writes, leaves fewer, and the read
		// sees the FIN instead.
		if st := clientAt(ev, ev.Wire.FIN, writesPerLine(ev)); st.inRead || st.writesLeft < 2 {
			j := finJudgement(ev, killFINSpan(ev))
			j.Exp.Reason = "the FIN arrived in the middle of a line, so fewer than two writes met it: " + j.Exp.Reason
			return j
		}
		return Judgement{Exp: model.Expectation{Errors: errs, Reason: why},
			Checks: []model.Result{finCheck(ev.Wire.FIN, killFINSpan(ev), ev.FaultAt)}}
	},
	Bound: func(ev *Evidence) time.Duration { return 30*time.Second + 2*ev.Opt.Interval },
}
