package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/echo/classic"
	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/clocksync"
	"github.com/hostlab/hostlab/lab/timeline"
	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/vms"
)

// EchoPort is the echo server's port, the seed's 9998.
const EchoPort = 9998

// relevantSysctls are read back from both guests into the run's config.
var relevantSysctls = []string{
	"net.ipv4.tcp_retries1", "net.ipv4.tcp_retries2", "net.ipv4.tcp_syn_retries", "net.ipv4.tcp_synack_retries",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_orphan_retries", "net.ipv4.tcp_early_retrans",
	"net.ipv4.tcp_thin_linear_timeouts", "net.ipv4.neigh.default.gc_stale_time",
	"net.ipv4.neigh.default.base_reachable_time_ms", "net.ipv4.neigh.default.mcast_solicit",
	"net.ipv4.neigh.default.ucast_solicit", "net.ipv4.neigh.default.retrans_time_ms",
	"net.ipv4.ip_forward",
}

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
	sockstat       map[string]*proc

	mu         sync.Mutex
	host       []timeline.Event
	libvirt    []vms.Event
	faultStart time.Time
	faultEnd   time.Time
	serverBack time.Time
	consoleOff map[string]int64

	// followup is evidence gathered after the observation (unreachable's
	// second connect).
	followup string

	sysctls map[string]map[string]string
	kernel  map[string]string
	notes   []string
}

// Execute runs scenario s with options opt in cfg.Lab and returns its
// result; an error means the run could not be carried out (the folder keeps
// whatever evidence was gathered, marked incomplete).
func Execute(ctx context.Context, s Scenario, opt Options, cfg Config) (*Result, error) {
	if s.Defaults != nil {
		s.Defaults(&opt)
	}
	applyDefaults(&opt)
	if err := opt.Validate(); err != nil {
		return nil, err
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
		partial := r.collect(false, err.Error())
		if partial != nil {
			_ = partial.write()
		}
		return partial, fmt.Errorf("%s: %w (partial evidence in %s)", s.Name, err, dir)
	}
	return res, nil
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
	if o.Reboot == "" {
		o.Reboot = "reset"
	}
	if o.Down == 0 {
		o.Down = 5 * time.Second
	}
}

func (r *Run) execute(ctx context.Context) (*Result, error) {
	evctx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"prepare guests", r.prepare},
		{"synchronise clocks", r.syncClocks},
		{"start echo server", r.startServer},
		{"start client", r.startClient},
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
	r.client.stop()
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
	now := time.Now()
	e, err := timeline.NewEvent(timeline.SrcHost, ev, now, data)
	if err == nil {
		r.mu.Lock()
		r.host = append(r.host, e)
		r.mu.Unlock()
	}
	return now
}

// markFault runs do between the fault_start and fault_end events; the fault
// instant is taken as the start, the end bounds it.
func (r *Run) markFault(name string, do func() error) error {
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

// guest returns the SSH connection to a role, dialling it if needed.
func (r *Run) guest(ctx context.Context, role string) (*provision.Client, error) {
	if c, ok := r.conn[role]; ok {
		return c, nil
	}
	c, err := r.cfg.Lab.Dial(ctx, role)
	if err != nil {
		return nil, err
	}
	r.conn[role] = c
	return c, nil
}

// dropConn makes the next guest call dial anew (the guest rebooted or went
// away). The old connection stays open until the run ends: closing it would
// make the guest's sshd hang up the processes it started, which would close
// the server's socket for a reason that is not the fault.
func (r *Run) dropConn(role string) {
	if c, ok := r.conn[role]; ok {
		r.stale = append(r.stale, c)
		delete(r.conn, role)
	}
}

func (r *Run) closeConns() {
	for role := range r.conn {
		r.dropConn(role)
	}
	for _, c := range r.stale {
		c.Close()
	}
	r.stale = nil
}

// sh runs a command in a guest and returns its output; non-zero is an error.
func (r *Run) sh(ctx context.Context, role, cmd string) (string, error) {
	c, err := r.guest(ctx, role)
	if err != nil {
		return "", err
	}
	out, err := c.Output(ctx, cmd)
	return string(out), err
}

// prepare makes sure the server runs, clears leftovers, applies and reads
// back sysctls, records kernels and deploys the classic client if used.
func (r *Run) prepare(ctx context.Context) error {
	if err := r.ensureServer(ctx); err != nil {
		return err
	}
	for _, role := range lab.Roles {
		g, _ := r.cfg.Lab.State.Guest(role)
		if fi, err := os.Stat(g.Console); err == nil {
			r.consoleOff[role] = fi.Size()
		}
		if _, err := r.sh(ctx, role, "killall -9 hostlab-echo-server hostlab-echo-client hostlab-sockstat echo_server echo_client 2>/dev/null; true"); err != nil {
			return err
		}
	}
	for _, s := range r.Opt.Sysctls {
		role, key, value, _ := ParseSysctl(s)
		if _, err := r.sh(ctx, role, fmt.Sprintf("sysctl -w %s=%s", key, value)); err != nil {
			return fmt.Errorf("apply --sysctl %s: %w", s, err)
		}
	}
	for _, g := range r.cfg.Lab.State.Guests {
		role := g.Role
		keys := append([]string(nil), relevantSysctls...)
		for _, s := range r.Opt.Sysctls {
			if rl, key, _, _ := ParseSysctl(s); rl == role && !slices.Contains(keys, key) {
				keys = append(keys, key)
			}
		}
		out, err := r.sh(ctx, role, "uname -r; for k in "+strings.Join(keys, " ")+"; do echo \"$k=$(sysctl -n $k 2>/dev/null)\"; done")
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		r.kernel[role] = lines[0]
		r.sysctls[role] = map[string]string{}
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, "="); ok {
				r.sysctls[role][k] = v
			}
		}
	}
	for _, s := range r.Opt.Sysctls {
		role, key, value, _ := ParseSysctl(s)
		if got := r.sysctls[role][key]; got != "" && got != value {
			return fmt.Errorf("--sysctl %s did not hold: the guest reads back %s", s, got)
		}
	}
	return r.deployClient(ctx)
}

// clientBinary is the client program's path in the guest.
func (r *Run) clientBinary() string {
	switch r.Opt.Client {
	case ClientGo:
		return "hostlab-echo-client"
	case ClientClassic:
		return provision.GuestBinDir + "/" + classic.ClientBinary
	}
	return provision.GuestBinDir + "/" + filepath.Base(string(r.Opt.Client))
}

// deployClient uploads the classic or a user's client into the client guest.
func (r *Run) deployClient(ctx context.Context) error {
	local := string(r.Opt.Client)
	switch r.Opt.Client {
	case ClientGo:
		return nil
	case ClientClassic:
		out := filepath.Join(r.cfg.Lab.Home(), "cache", "classic")
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		_, cl, err := classic.Build(ctx, r.cfg.CC, out)
		if err != nil {
			return fmt.Errorf("build the classic client: %w", err)
		}
		local = cl
	}
	c, err := r.guest(ctx, lab.RoleClient)
	if err != nil {
		return err
	}
	if _, err := provision.Deploy(ctx, c, []provision.File{{Local: local, Remote: r.clientBinary(), Mode: 0o755}}); err != nil {
		return err
	}
	return nil
}

// syncClocks measures both guests' clocks against the host's.
func (r *Run) syncClocks(ctx context.Context) error {
	for _, role := range lab.Roles {
		c, err := r.guest(ctx, role)
		if err != nil {
			return err
		}
		clk, samples, err := clocksync.Estimate(ctx, c, 20)
		if err != nil {
			return fmt.Errorf("%s clock: %w", role, err)
		}
		r.clock[role], r.samples[role] = clk, samples
		_, unc := clk.HostTimeFromMono(samples[len(samples)-1].GuestMono)
		r.log.Debug("clock", "guest", role, "uncertainty", unc)
	}
	return nil
}

// resyncClient adds a second set of client clock samples so the fit spans
// the whole run (the client never reboots).
func (r *Run) resyncClient(ctx context.Context) {
	c, err := r.guest(ctx, lab.RoleClient)
	if err != nil {
		r.note("clock resync: " + err.Error())
		return
	}
	more, err := clocksync.Measure(ctx, c, 20)
	if err != nil {
		r.note("clock resync: " + err.Error())
		return
	}
	all := append(append([]timeline.ClockSample(nil), r.samples[lab.RoleClient]...), more...)
	if clk, err := timeline.EstimateClock(all); err == nil {
		r.clock[lab.RoleClient], r.samples[lab.RoleClient] = clk, all
	} else {
		r.note("clock fit over the run: " + err.Error())
	}
}

// startServer starts the echo server and the socket samplers.
func (r *Run) startServer(ctx context.Context) error {
	c, err := r.guest(ctx, lab.RoleServer)
	if err != nil {
		return err
	}
	cmd := fmt.Sprintf("exec hostlab-echo-server --listen :%d --mode fork --sigterm %s", EchoPort, r.Opt.ServerSigterm)
	if r.server, err = startProc(ctx, c, r.Dir, "server", lab.RoleServer, cmd); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.server.waitFor(wctx, "listen", func(evs []echo.Event) bool { return countEv(evs, "listen") > 0 }); err != nil {
		return err
	}
	for _, role := range lab.Roles {
		gc, err := r.guest(ctx, role)
		if err != nil {
			return err
		}
		p, err := startProc(ctx, gc, r.Dir, "sockstat-"+role, role, fmt.Sprintf("exec hostlab-sockstat --port %d", EchoPort))
		if err != nil {
			return err
		}
		r.sockstat[role] = p
	}
	return nil
}

// clientArgs builds the client's command line.
func (r *Run) clientArgs() string {
	srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
	o := r.Opt
	if o.Client == ClientClassic {
		args := []string{r.clientBinary(), "--lines", "1000000", fmt.Sprintf("--interval-ms %d", o.Interval.Milliseconds())}
		if o.SigpipeIgnore {
			args = append(args, "--sigpipe=ignore")
		}
		if r.Scenario.Name == "sigpipe" {
			args = append(args, "--twice", "--gap-ms", "200")
		}
		return "exec " + strings.Join(append(args, srv.LabIP(), fmt.Sprint(EchoPort)), " ")
	}
	args := []string{r.clientBinary(), "--connect", fmt.Sprintf("%s:%d", srv.LabIP(), EchoPort), "--read", o.Read, "--interval", o.Interval.String()}
	if o.Idle {
		args = append(args, "--idle")
	}
	if o.Keepalive != "" {
		args = append(args, "--keepalive", o.Keepalive)
	}
	if o.UserTimeout > 0 {
		args = append(args, "--user-timeout", o.UserTimeout.String())
	}
	if o.ReadTimeout > 0 {
		args = append(args, "--read-timeout", o.ReadTimeout.String(), "--exit-on-timeout")
	}
	if r.Scenario.Name == "sigpipe" {
		args = append(args, "--twice", "--gap", "200ms")
	}
	return "exec " + strings.Join(args, " ")
}

// startClient starts the client and waits until the connection carries
// traffic (or, idle, is established and accepted).
func (r *Run) startClient(ctx context.Context) error {
	c, err := r.guest(ctx, lab.RoleClient)
	if err != nil {
		return err
	}
	if r.client, err = startProc(ctx, c, r.Dir, "client", lab.RoleClient, r.clientArgs()); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	want := 2
	if r.Opt.Idle {
		want = 0
	}
	if err := r.client.waitFor(wctx, "connection and traffic", func(evs []echo.Event) bool {
		return countEv(evs, "connect") > 0 && countEv(evs, "read") >= want
	}); err != nil {
		return err
	}
	return r.server.waitFor(wctx, "accept", func(evs []echo.Event) bool {
		return countEv(evs, "child_ready") > 0
	})
}

// serverChild is the pid of the server process serving the client.
func (r *Run) serverChild() (int, error) {
	for _, e := range r.server.snapshot() {
		if e.Ev == "accept" && e.ChildPID > 0 {
			return e.ChildPID, nil
		}
	}
	return 0, errors.New("the echo server logged no accepted connection")
}

// stopGuestProcs ends the run's remaining guest programs.
func (r *Run) stopGuestProcs() {
	r.client.stop()
	r.server.stop()
	for _, p := range r.sockstat {
		p.stop()
	}
}

// ensureServer starts the server domain if it is off and waits for SSH.
func (r *Run) ensureServer(ctx context.Context) error {
	srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
	hv := r.cfg.Lab.Hypervisor()
	st, err := hv.State(ctx, srv.Domain)
	if err != nil {
		return err
	}
	if st == vms.StateRunning {
		return nil
	}
	if st != vms.StateShutoff {
		return fmt.Errorf("server domain %s is %s: run hostlab down and up", srv.Domain, st)
	}
	r.log.Info("server is off: starting it")
	n := readyCount(srv.Console)
	if err := hv.Start(ctx, srv.Domain); err != nil {
		return err
	}
	_, err = r.waitServerBack(ctx, n)
	return err
}

// waitServerBack waits until the server's console shows more than n ready
// lines, then until it answers SSH; it returns when the init was ready.
func (r *Run) waitServerBack(ctx context.Context, n int) (time.Time, error) {
	srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for readyCount(srv.Console) <= n {
		select {
		case <-wctx.Done():
			return time.Time{}, fmt.Errorf("server did not boot again: %w", wctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	back := time.Now()
	r.dropConn(lab.RoleServer)
	if _, err := r.guest(wctx, lab.RoleServer); err != nil {
		return back, err
	}
	return back, nil
}

// readyCount counts the init's ready lines in a console log.
func readyCount(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte(lab.ReadyMarker))
}
