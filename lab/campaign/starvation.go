package campaign

import (
	"time"

	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/scenario"
)

// starvation is how late a cell's client timers fired beyond the granule of
// their timer-wheel level (model.TimerSlack: the kernel rounds a timer's
// expiry up to it, so a 27 s RTO fires up to 2.048 s late on an idle host):
// the part of the lateness that comes from the guest not running. Each
// retransmission's lateness is paired with the RTO armed before it (the
// base RTO for the first); keepalive probes, which the wire ladder does not
// list one by one, are granted the granule of the longest keepalive timer
// (idle or interval). It reports false when the run measured no timer.
func starvation(c Cell, res *scenario.Result) (float64, bool) {
	if res.Lateness == nil || res.Lateness.Timers == 0 {
		return 0, false
	}
	if l := res.WireLadder; l != nil && len(l.Late) > 0 && len(l.Late) == len(l.Rungs) {
		var m time.Duration
		for i, late := range l.Late {
			timer := l.Base
			if i > 0 {
				timer = l.Rungs[i-1].Armed
			}
			m = max(m, late-model.TimerSlack(timer, 0))
		}
		return m.Seconds(), true
	}
	var slack time.Duration
	if k, err := scenario.ParseKeepalive(c.opt.Keepalive); c.opt.Keepalive != "" && err == nil {
		slack = model.TimerSlack(max(k.Idle, k.Intvl), 0)
	}
	return max(0, res.Lateness.MaxS-slack.Seconds()), true
}
