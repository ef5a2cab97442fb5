package scenario

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/timeline"
	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/vms"
)

// Config says where a run happens and what it writes.
type Config struct {
	// Lab is the lab the run uses; it must be up.
	Lab *lab.Lab
	// Out is the folder run folders are created in.
	Out string
	// Log receives progress.
	Log *slog.Logger
	// CC is the C compiler for the classic client ("cc" if empty).
	CC string
}

// Run is one execution of a scenario: its options, its evidence as it
// accumulates, and the instants that matter.
type Run struct {
	Scenario Scenario
	Opt      Options
	Dir      string

	cfg     Config
	log     *slog.Logger
	conn    map[string]*provision.Client
	stale   []*provision.Client
	clock   map[string]timeline.Clock
	samples map[string][]timeline.ClockSample

	server, client *proc
	// capture is the client guest's own capture of its lab link.
	capture  *proc
	sockstat map[string]*proc

	mu         sync.Mutex
	host       []timeline.Event
	libvirt    []vms.Event
	faultStart time.Time
	faultEnd   time.Time
	faultPin   faultPin // set by pinFault: the window the fault took effect in
	serverBack time.Time
	stoppedAt  time.Time
	consoleOff map[string]int64
	// consoleAtFault is the size of the server's console at the fault:
	// marks are read from there on.
	consoleAtFault int64
	// rebootClock is the server's clock fit after a reboot in the run.
	rebootClock *timeline.Clock
	marks       []Mark
	captures    *captures // the lab links' captures, copied into the run folder (capture.go)

	// followup is evidence gathered after the observation (unreachable's
	// second connect).
	followup string

	sysctls map[string]map[string]string
	kernel  map[string]string
	// cut is a partition's cut and heal (partition.go).
	cut *cutState
	// link is the --link conditions in force (link.go), nil without.
	link  *LinkRecord
	notes []string

	// sysctlRec holds the guests' baselines, this run's overrides and what
	// was restored (sysctl.go).
	sysctlRec sysctlRecord
}

// Execute runs scenario s with options opt in cfg.Lab and returns its
// result; an error means the run could not be carried out (the folder keeps
// whatever evidence was gathered, marked incomplete).
func Execute(ctx context.Context, s Scenario, opt Options, cfg Config) (*Result, error) {
	if err := CheckOwn(s, opt); err != nil {
		return nil, err
	}
	opt = WithDefaults(s, opt)
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if s.Check != nil {
		if err := s.Check(opt); err != nil {
			return nil, err
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	unlock, err := cfg.Lab.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := filepath.Join(cfg.Out, time.Now().UTC().Format("20060102T150405Z")+"-"+s.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create run folder: %w", err)
	}
	r := &Run{
		Scenario: s, Opt: opt, Dir: dir, cfg: cfg, log: cfg.Log.With("scenario", s.Name),
		conn: map[string]*provision.Client{}, clock: map[string]timeline.Clock{},
		samples: map[string][]timeline.ClockSample{}, sockstat: map[string]*proc{},
		consoleOff: map[string]int64{}, sysctls: map[string]map[string]string{}, kernel: map[string]string{},
	}
	defer r.closeConns()
	res, err := r.execute(ctx)
	if err != nil {
		r.note("run failed: " + err.Error())
		r.restoreSysctls(ctx)
		r.clearLink(ctx)
		partial := r.collect(false, err.Error())
		if partial != nil {
			_ = partial.write()
		}
		return partial, fmt.Errorf("%s: %w (partial evidence in %s)", s.Name, err, dir)
	}
	return res, nil
}

// WithDefaults returns o with the scenario's own defaults filled in, then
// every run's (the Go client, blocking reads, a 1 s interval), as Execute
// runs it.
func WithDefaults(s Scenario, o Options) Options {
	if s.Defaults != nil {
		s.Defaults(&o)
	}
	applyDefaults(&o)
	return o
}

func applyDefaults(o *Options) {
	if o.Client == "" {
		o.Client = ClientGo
	}
	if o.Read == "" {
		o.Read = "blocking"
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.ServerSigterm == "" {
		o.ServerSigterm = "default"
	}
}

func (r *Run) execute(ctx context.Context) (*Result, error) {
	evctx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	r.startCaptures()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"prepare guests", r.prepare},
		{"synchronise clocks", r.syncClocks},
		{"start echo server", r.startServer},
		{"start client", r.startClient},
	}
	if r.Scenario.StartsClient {
		steps = steps[:len(steps)-1] // The fault starts it.
	}
	for _, st := range steps {
		r.hostEvent("step", map[string]any{"step": st.name})
		if err := st.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	if evs, err := r.cfg.Lab.Hypervisor().Events(evctx); err == nil {
		go func() {
			for ev := range evs {
				r.mu.Lock()
				r.libvirt = append(r.libvirt, ev)
				r.mu.Unlock()
			}
		}()
	} else {
		r.note("no libvirt lifecycle events: " + err.Error())
	}
	r.log.Info("fault", "what", r.Scenario.Summary)
	if err := r.Scenario.Fault(ctx, r); err != nil {
		return nil, fmt.Errorf("fault: %w", err)
	}
	r.observe(ctx)
	r.stopClient()
	if r.Scenario.Followup != nil {
		r.followup = r.Scenario.Followup(ctx, r)
		r.log.Info("followup", "result", r.followup)
	}
	if r.Scenario.Heal != nil {
		if err := r.Scenario.Heal(ctx, r); err != nil {
			r.note("heal: " + err.Error())
		}
	}
	r.stopGuestProcs()
	r.resyncClient(ctx)
	r.restoreSysctls(ctx)
	r.clearLink(ctx)
	res := r.collect(true, "")
	if err := res.write(); err != nil {
		return nil, err
	}
	return res, nil
}

// note records a remark for the result.
func (r *Run) note(s string) {
	r.mu.Lock()
	r.notes = append(r.notes, s)
	r.mu.Unlock()
	r.log.Warn(s)
}

// hostEvent records an orchestrator event at the host's now.
func (r *Run) hostEvent(ev string, data any) time.Time {
	return r.hostEventAt(ev, time.Now(), data)
}

// hostEventAt records an orchestrator event at a given host time.
func (r *Run) hostEventAt(ev string, now time.Time, data any) time.Time {
	e, err := timeline.NewEvent(timeline.SrcHost, ev, now, data)
	if err == nil {
		r.mu.Lock()
		r.host = append(r.host, e)
		r.mu.Unlock()
	}
	return now
}

// markFault runs do between the fault_start and fault_end events. Unless do
// pins the fault (pinFault), the fault instant is taken as the start and
// the end bounds it.
func (r *Run) markFault(name string, do func() error) error {
	if srv, err := r.cfg.Lab.State.Guest(lab.RoleServer); err == nil {
		if fi, err := os.Stat(srv.Console); err == nil {
			r.consoleAtFault = fi.Size()
		}
	}
	r.mu.Lock()
	r.faultStart = time.Now()
	r.host = append(r.host, timeline.FaultStart(name, r.faultStart))
	r.mu.Unlock()
	err := do()
	r.mu.Lock()
	r.faultEnd = time.Now()
	r.host = append(r.host, timeline.FaultEnd(name, r.faultEnd))
	r.mu.Unlock()
	return err
}

// faultPin is a measured window that holds the instant a fault took effect.
type faultPin struct {
	from, to time.Time
	// what says what bounds the window, for result.json.
	what string
}

// pinFault records that the fault took effect within [from, to], a window
// measured by the fault itself (a power cut's pause call, a kill between two
// guest clock stamps), and adds the host event ev placed at the window's
// middle with its half-width as uncertainty; data adds to the event's
// from_ns, to_ns and what.
func (r *Run) pinFault(ev string, from, to time.Time, what string, data map[string]any) {
	p := faultPin{from: from, to: to, what: what}
	d := map[string]any{"from_ns": from.UnixNano(), "to_ns": to.UnixNano(), "what": what}
	for k, v := range data {
		d[k] = v
	}
	at, unc := p.instant()
	e, err := timeline.NewEvent(timeline.SrcHost, ev, at, d)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faultPin = p
	if err == nil {
		e.UncertNS = int64(unc)
		r.host = append(r.host, e)
	}
}

// instant is the middle of the window and its half-width.
func (p faultPin) instant() (time.Time, time.Duration) {
	w := p.to.Sub(p.from)
	return p.from.Add(w / 2), (w + 1) / 2
}

// faultInstant is the instant detection counts from (faultAt), the ± bound
// on it, and what bounds it: the middle of the pinned window when the fault
// was pinned, else the start of the fault call, with the call's whole
// duration as bound (the fault took effect somewhere inside the call).
func (r *Run) faultInstant() (time.Time, time.Duration, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.faultPin.from.IsZero() {
		at, unc := r.faultPin.instant()
		return at, unc, r.faultPin.what
	}
	return r.faultStart, r.faultEnd.Sub(r.faultStart), "the fault call (fault_start..fault_end): the instant is taken as its start"
}

// prepare makes sure the server runs, clears leftovers, applies and reads
// back sysctls and kernels (sysctl.go) and deploys the client if needed.
func (r *Run) prepare(ctx context.Context) error {
	if err := r.ensureServer(ctx); err != nil {
		return err
	}
	if err := r.healLeftoverCut(ctx); err != nil {
		return err
	}
	if err := r.applyLink(ctx); err != nil {
		return err
	}
	for _, role := range lab.Roles {
		g, _ := r.cfg.Lab.State.Guest(role)
		if fi, err := os.Stat(g.Console); err == nil {
			r.consoleOff[role] = fi.Size()
		}
		if _, err := r.sh(ctx, role, "killall -9 hostlab-echo-server hostlab-echo-client hostlab-sockstat hostlab-capture echo_server echo_client 2>/dev/null; true"); err != nil {
			return err
		}
	}
	if err := r.applySysctls(ctx); err != nil {
		return err
	}
	return r.deployClient(ctx)
}
