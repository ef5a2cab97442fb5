package campaign

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/scenario"
)

// Estimates before anything was measured.
const (
	// PriorOverhead is a cell's time besides its detection before any cell
	// finished: preparing the guests, clock fits, starting the echo pair,
	// healing and collecting (TCG, 2 cores).
	PriorOverhead = 25 * time.Second
	// priorLabUp is a lab's bring-up (TCG, warm cache).
	priorLabUp = 20 * time.Second
)

// estimator predicts how long cells take, from the cells finished so far.
type estimator struct {
	// detect are the predicted (else observed) detections of finished
	// cells, by scenario and canonical variant.
	detect map[string][]float64
	// overhead are finished cells' wall times minus their detection.
	overhead []float64
}

func newEstimator() *estimator { return &estimator{detect: map[string][]float64{}} }

// add learns from a finished cell.
func (e *estimator) add(c Cell, r Record) {
	d := detectOf(r)
	if r.PredictedS != nil {
		d = *r.PredictedS
	}
	if d > 0 {
		e.detect[c.canon] = append(e.detect[c.canon], d)
	}
	if r.TookS > 0 {
		e.overhead = append(e.overhead, max(0, r.TookS-detectOf(r)))
	}
}

// detectOf is a record's observed detection in seconds, or 0.
func detectOf(r Record) float64 {
	if r.Observed.DetectS != nil {
		return *r.Observed.DetectS
	}
	return 0
}

// cell is the estimated wall time of one cell: its detection — the mean
// prediction of finished cells of the same scenario and variant, else the
// model's prior — plus the mean overhead of finished cells.
func (e *estimator) cell(c Cell) time.Duration {
	var d float64
	if ds := e.detect[c.canon]; len(ds) > 0 {
		d = mean(ds)
	} else {
		d = priorDetect(c).Seconds()
	}
	o := PriorOverhead.Seconds()
	if len(e.overhead) > 0 {
		o = mean(e.overhead)
	}
	return time.Duration((d + o) * float64(time.Second))
}

// eta estimates the time left: the cells still to run and what is left of
// the running ones (elapsed against their estimate), shared by the labs
// running at once, plus a bring-up for each kind of lab not yet up.
func (e *estimator) eta(todo []Cell, running map[string]runningCell, parallel int, labsUp map[labKind]bool) time.Duration {
	var sum time.Duration
	need := map[labKind]bool{}
	for _, c := range todo {
		sum += e.cell(c)
		if !labsUp[c.kind()] {
			need[c.kind()] = true
		}
	}
	for _, rc := range running {
		sum += max(0, e.cell(rc.cell)-time.Since(rc.start))
	}
	sum += time.Duration(len(need)) * priorLabUp
	return sum / time.Duration(max(1, parallel))
}

// priorDetect is a cell's detection before any cell of its variant
// finished: for a dead server (power-off, unreachable) the kernel's rule
// for the variant's settings — tcp_retries2 (15 unless the variant sets
// it) from an RTO of 200 ms, TCP_USER_TIMEOUT, or keepalive for an idle
// client — else the scenario's own bound (how long a run watches) with the
// variant's options and sysctl overrides (connect-dead's from
// tcp_syn_retries).
func priorDetect(c Cell) time.Duration {
	opt := scenario.WithDefaults(c.scenario, c.opt)
	var d time.Duration
	switch c.Scenario {
	case "power-off", "unreachable":
		d = deadPeerPrior(opt)
	default:
		if c.scenario.Bound != nil {
			d = c.scenario.Bound(&scenario.Evidence{Scenario: c.Scenario, Opt: opt, Grace: 5 * time.Second, Sysctls: overrides(opt.Sysctls)})
		} else {
			d = time.Minute
		}
	}
	if opt.MaxWait > 0 {
		d = min(d, opt.MaxWait)
	}
	return d
}

// overrides are a variant's --sysctl values by role and key, as a run
// reads them back.
func overrides(sysctls []string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, sc := range sysctls {
		role, key, value, err := scenario.ParseSysctl(sc)
		if err != nil {
			continue
		}
		if out[role] == nil {
			out[role] = map[string]string{}
		}
		out[role][key] = value
	}
	return out
}

// deadPeerPrior is the model's detection of a dead peer for opt.
func deadPeerPrior(opt scenario.Options) time.Duration {
	if opt.Idle {
		k, err := scenario.ParseKeepalive(opt.Keepalive)
		if opt.Keepalive == "" || err != nil {
			return time.Minute // nothing to learn: the scenario watches a minute
		}
		at, _ := model.KeepaliveAbort(k, opt.UserTimeout)
		return at
	}
	if opt.UserTimeout > 0 {
		return opt.UserTimeout
	}
	retries := 15
	for _, s := range opt.Sysctls {
		if v, ok := strings.CutPrefix(s, "client:net.ipv4.tcp_retries2="); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				retries = n
			}
		}
	}
	return model.RetransmitTimeout(retries, 200*time.Millisecond, 120*time.Second)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
