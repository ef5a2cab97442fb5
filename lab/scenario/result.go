package scenario

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/timeline"
)

// ResultVersion is the version of result.json's schema.
const ResultVersion = 1

// Result is a run's outcome: result.json.
type Result struct {
	Version  int           `json:"version"`
	Scenario string        `json:"scenario"`
	Verdict  model.Verdict `json:"verdict"`
	// Why explains the verdict.
	Why      string   `json:"why"`
	Property string   `json:"property"`
	Expected Expected `json:"expected"`
	Observed Observed `json:"observed"`
	// PredictedS is the nominal predicted detection in seconds after the
	// fault (every timer on time), where a mechanism gives one.
	PredictedS *float64 `json:"predicted_s,omitempty"`
	// Rules names the rule set the verdict applied ("linux").
	Rules string `json:"rules"`
	// Checks are the further checks of the mechanism combined into the
	// verdict (retransmission count, the server's FIN).
	Checks []model.Result `json:"checks,omitempty"`
	// WireLadder is the retransmission ladder measured on the wire.
	WireLadder *Ladder `json:"wire_ladder,omitempty"`
	// Retransmits is the number of retransmissions after the fault.
	Retransmits int    `json:"retransmits"`
	Ladder      []Step `json:"ladder,omitempty"`
	RunDir      string `json:"run_dir"`
	// Complete is false when the run could not finish; Incomplete says why.
	Complete   bool       `json:"complete"`
	Incomplete string     `json:"incomplete,omitempty"`
	Config     RunConfig  `json:"config"`
	Clocks     ClockStats `json:"clocks"`
	Started    time.Time  `json:"started"`
	FaultAt    time.Time  `json:"fault_at,omitempty"`
	Notes      []string   `json:"notes,omitempty"`
	// Followup is evidence gathered after the observation, e.g. a second
	// connect to the dead host (unreachable).
	Followup string `json:"followup,omitempty"`
	// Partition is a partition's account of the cut: its measured length,
	// what went into it, when the queued data crossed, what the server saw.
	Partition *PartitionReport `json:"partition,omitempty"`
	// Lateness is the kernel timer lateness measured in this run, where the
	// run had timers to measure (retransmissions, keepalive probes).
	Lateness *Lateness `json:"lateness,omitempty"`

	// FaultUncertS is the ± bound, in seconds, on FaultAt — the instant
	// detection counts from — and FaultPin says what bounds it: a power
	// cut's pause call, a kill between two guest clock stamps, or the
	// whole fault call.
	FaultUncertS *float64 `json:"fault_uncert_s,omitempty"`
	FaultPin     string   `json:"fault_pin,omitempty"`
}

// Lateness is how late the client kernel's timers fired in one run: each
// retransmission's or keepalive probe's time on the wire against the
// expiry of the timer armed for it. Verdict windows widen by it.
type Lateness struct {
	// Timers is the number of timer firings measured.
	Timers int `json:"timers"`
	// MaxS is the largest single lateness, in seconds.
	MaxS float64 `json:"max_s"`
	// MeanS is the mean lateness, in seconds.
	MeanS float64 `json:"mean_s"`
	// TotalS is the lateness summed along the ladder, in seconds.
	TotalS float64 `json:"total_s"`
	// Source says what was measured: "wire" (the client's capture of the
	// lab link) or "tcp_info" (TCP_INFO samples, ±their period).
	Source string `json:"source"`
}

// Expected is the expectation as recorded in result.json.
type Expected struct {
	Errors []string `json:"errors"`
	Error  string   `json:"error"`
	Why    string   `json:"why"`
	// Missing says why no prediction could be made (verdict unknown).
	Missing    string   `json:"missing,omitempty"`
	PredictedS *float64 `json:"predicted_s,omitempty"`
	// Window bounds the detection, in seconds after the fault.
	Window *WindowS `json:"window,omitempty"`
}

// WindowS is a detection window in seconds after the fault.
type WindowS struct {
	// EarliestS and LatestS bound the detection; SlackS is the anchors'
	// own uncertainty allowed on both sides.
	EarliestS float64 `json:"earliest_s"`
	LatestS   float64 `json:"latest_s"`
	SlackS    float64 `json:"slack_s"`
	// Bound is true when only a bound is known, not a prediction.
	Bound bool `json:"bound,omitempty"`
	// Basis says what the window is derived from.
	Basis string `json:"basis"`
}

// Observed is the observation as recorded in result.json.
type Observed struct {
	Error       string   `json:"error"`
	Event       string   `json:"event,omitempty"`
	DetectS     *float64 `json:"detect_s"`
	DetectPlusS float64  `json:"detect_uncert_s"`
	ClientExit  string   `json:"client_exit,omitempty"`
	// ServerBackS is when the server host was ready again after the fault
	// (crash-reboot), and DetectAfterBackS the detection after that.
	ServerBackS      *float64 `json:"server_back_s,omitempty"`
	DetectAfterBackS *float64 `json:"detect_after_back_s,omitempty"`
}

// RunConfig is the resolved configuration of a run.
type RunConfig struct {
	Options Options                      `json:"options"`
	Lab     string                       `json:"lab"`
	Accel   string                       `json:"accel"`
	Kernel  map[string]string            `json:"kernel"`
	Sysctls map[string]map[string]string `json:"sysctls"`
	Client  string                       `json:"client_command"`
	// GraceNS is the server init's SIGTERM to SIGKILL grace.
	GraceNS int64 `json:"grace_ns"`

	// Link is the link conditions in force (--link), read back from the
	// guest that holds them; nil without.
	Link *LinkRecord `json:"link,omitempty"`

	// SysctlBaseline is each guest's baseline (its values at boot) of the
	// keys in Sysctls (the values in force during the run: the relevant
	// sysctls and the overridden ones); every run starts from the baseline
	// and leaves the lab at it.
	SysctlBaseline map[string]map[string]string `json:"sysctl_baseline,omitempty"`
	// SysctlOverrides are this run's --sysctl values, by role.
	SysctlOverrides map[string]map[string]string `json:"sysctl_overrides,omitempty"`
	// SysctlRestoredBefore are the keys found away from the baseline before
	// the run (left by an earlier, killed run) and restored, by role.
	SysctlRestoredBefore map[string]map[string]SysctlChange `json:"sysctl_restored_before,omitempty"`
	// SysctlRestoredAfter are the keys restored to the baseline at the end
	// of the run, by role.
	SysctlRestoredAfter map[string]map[string]SysctlChange `json:"sysctl_restored_after,omitempty"`
}

// ClockStats summarises each guest's clock fit.
type ClockStats map[string]ClockStat

// ClockStat is one guest's clock fit.
type ClockStat struct {
	Samples  int     `json:"samples"`
	MinRTTms float64 `json:"min_rtt_ms"`
	// UncertMS is the ± bound on a guest stamp mapped to the host axis.
	UncertMS float64 `json:"uncert_ms"`
}

func secs(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

// collect gathers the evidence into a Result and the run folder.
func (r *Run) collect(complete bool, reason string) *Result {
	res := &Result{
		Version: ResultVersion, Scenario: r.Scenario.Name, Property: r.Scenario.Property, RunDir: r.Dir,
		Complete: complete, Incomplete: reason, Clocks: ClockStats{},
	}
	faultAt, faultUncert, faultPin := r.faultInstant()
	if !r.faultStart.IsZero() {
		res.FaultAt, res.FaultUncertS, res.FaultPin = faultAt, secs(faultUncert), faultPin
	}
	res.Config = RunConfig{Options: r.Opt, Lab: r.cfg.Lab.Name(), Accel: string(r.cfg.Lab.State.Accel),
		Kernel: r.kernel, Sysctls: r.sysctls, Client: r.clientArgs(), GraceNS: int64(r.cfg.Lab.State.Grace)}
	r.sysctlRec.fill(&res.Config)
	res.Config.Link = r.link
	if len(r.host) > 0 {
		res.Started = r.host[0].Host()
	}
	for role, clk := range r.clock {
		s := r.samples[role]
		_, unc := clk.HostTimeFromMono(s[len(s)-1].GuestMono)
		res.Clocks[role] = ClockStat{Samples: len(s), MinRTTms: float64(clk.MinRTT) / 1e6, UncertMS: float64(unc) / 1e6}
	}
	r.copyEvidence()
	if err := r.writeWire(); err != nil {
		r.note("client capture: " + err.Error())
	}
	r.readMarks()
	if r.client != nil {
		if ex, done := r.client.exited(); done {
			r.mu.Lock()
			x := exitOf(ex, !r.stoppedAt.IsZero() && !ex.At.Before(r.stoppedAt))
			if e, err := timeline.NewEvent(timeline.SrcHost, evClientExit, ex.At, x); err == nil {
				r.host = append(r.host, e)
			}
			r.mu.Unlock()
		}
	}
	ev := r.evidence()
	ev.attachWire(filepath.Join(r.Dir, wireFile))
	res.judge(r.Scenario, ev, Kernel)
	res.Ladder, res.Retransmits = r.ladder()
	if !complete {
		res.Verdict, res.Why = model.Unknown, "the run did not complete: "+reason
	}
	res.Followup = r.followup
	r.mu.Lock()
	res.Notes = append([]string(nil), r.notes...)
	r.mu.Unlock()
	if err := r.writeTimeline(complete, reason); err != nil {
		res.Notes = append(res.Notes, "timeline: "+err.Error())
	}
	return res
}

// judge fills the verdict and what it rests on from a decision of rules k.
func (res *Result) judge(s Scenario, ev *Evidence, k Rules) {
	d := Judge(s, ev, k)
	ob := d.Observation
	res.Rules = d.Rules
	res.Verdict, res.Why, res.Checks = d.Verdict, d.Why, d.Judgement.Checks
	res.Observed = Observed{Error: ob.Error, Event: ob.Event, ClientExit: ob.Exit}
	if !ob.At.IsZero() {
		res.Observed.DetectS, res.Observed.DetectPlusS = secs(d.Detect), d.DetectUncert.Seconds()
		if !ev.ServerBack.IsZero() {
			res.Observed.ServerBackS = secs(ev.ServerBack.Sub(ev.FaultAt))
			res.Observed.DetectAfterBackS = secs(ob.At.Sub(ev.ServerBack))
		}
	}
	exp := d.Judgement.Exp
	res.Expected = Expected{Errors: exp.Errors, Error: strings.Join(exp.Errors, " or "), Why: exp.Reason, Missing: exp.Missing}
	if w := exp.Window; w != nil {
		res.Expected.Window = &WindowS{EarliestS: w.Earliest.Seconds(), LatestS: w.Latest.Seconds(), SlackS: w.Slack.Seconds(), Bound: w.Bound, Basis: w.Basis}
		if w.Nominal != 0 {
			res.PredictedS = secs(w.Nominal)
			res.Expected.PredictedS = res.PredictedS
		}
	}
	res.Lateness = lateness(d.Judgement.Late)
	res.Partition = d.Judgement.Partition
	res.WireLadder = d.Judgement.Ladder
}

// readMarks places the server console's steps since the fault on the host
// axis: the boot the fault hit through the run's clock fit, a boot after it
// through the fit taken when the server came back.
func (r *Run) readMarks() {
	srv, err := r.cfg.Lab.State.Guest(lab.RoleServer)
	if err != nil || r.faultStart.IsZero() {
		return
	}
	tmp := filepath.Join(r.Dir, ".console-since-fault")
	defer os.Remove(tmp)
	if err := copyFrom(srv.Console, tmp, r.consoleAtFault); err != nil {
		r.note("console marks: " + err.Error())
		return
	}
	r.mu.Lock()
	boot1 := r.rebootClock
	r.mu.Unlock()
	marks, err := consoleMarks(tmp, srv.LabIP(), func(boot int, mono int64) (time.Time, time.Duration, bool) {
		switch {
		case boot == 0:
			clk, ok := r.clock[lab.RoleServer]
			if !ok {
				return time.Time{}, 0, false
			}
			at, unc := clk.HostTimeFromMono(mono)
			return at, unc, true
		case boot == 1 && boot1 != nil:
			at, unc := boot1.HostTimeFromMono(mono)
			return at, unc, true
		}
		return time.Time{}, 0, false
	})
	if err != nil {
		r.note("console marks: " + err.Error())
	}
	r.mu.Lock()
	r.marks = marks
	r.mu.Unlock()
}

// write saves result.json in the run folder.
func (res *Result) write() error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(filepath.Join(res.RunDir, "result.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// copyEvidence copies this run's part of the consoles and of every lab
// link's capture (the rest of it: capture.go) into the run folder.
func (r *Run) copyEvidence() {
	for _, g := range r.cfg.Lab.State.Guests {
		role := g.Role
		if err := copyFrom(g.Console, filepath.Join(r.Dir, role+".console.log"), r.consoleOff[role]); err != nil {
			r.note("copy console: " + err.Error())
		}
	}
	r.flushCaptures("end of run")
}

// copyFrom copies src from offset to dst.
func copyFrom(src, dst string, off int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := in.Seek(off, io.SeekStart); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Summary is the short human report of a result.
func (res *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", res.Scenario, strings.ToUpper(res.Verdict.String()))
	if res.Expected.Missing != "" {
		fmt.Fprintf(&b, "  expected  no prediction: %s\n", res.Expected.Missing)
	} else {
		fmt.Fprintf(&b, "  expected  %s — %s\n", orNone(res.Expected.Error), res.Expected.Why)
	}
	if w := res.Expected.Window; w != nil {
		kind := "window"
		if w.Bound {
			kind = "bound "
		}
		line := fmt.Sprintf("%.3f..%.3f s after the fault", w.EarliestS, w.LatestS)
		if res.Expected.PredictedS != nil {
			line += fmt.Sprintf(", nominal %.3f s", *res.Expected.PredictedS)
		}
		if w.SlackS > 0 {
			line += fmt.Sprintf(", ±%.3f s", w.SlackS)
		}
		fmt.Fprintf(&b, "  %s    %s\n            from %s\n", kind, line, w.Basis)
	}
	obs := orNone(res.Observed.Error)
	if res.Observed.DetectS != nil {
		obs += fmt.Sprintf(" %.3f s ± %.3f s after the fault", *res.Observed.DetectS, res.Observed.DetectPlusS)
	}
	fmt.Fprintf(&b, "  observed  %s (%d retransmissions", obs, res.Retransmits)
	if res.Observed.ClientExit != "" {
		fmt.Fprintf(&b, "; client %s", res.Observed.ClientExit)
	}
	b.WriteString(")\n")
	if res.Observed.DetectAfterBackS != nil {
		fmt.Fprintf(&b, "            server back after %.2f s; client learnt %.2f s later\n", *res.Observed.ServerBackS, *res.Observed.DetectAfterBackS)
	}
	if p := res.Partition; p != nil && p.DownS > 0 {
		fmt.Fprintf(&b, "  cut       %.3f s ± %.3f s, both directions, in the client's QEMU: %d probe(s) and %d RTO retransmission(s) went into it\n",
			p.DownS, p.DownUncertS, p.ProbesInCut, p.RetransInCut)
		if p.DeliveredS != nil {
			fmt.Fprintf(&b, "  delivered %.3f s after the cut, %.3f s after the heal, by %s\n", *p.DeliveredS, *p.DeliveredAfterHealS, p.DeliveredBy)
		}
		if p.Server != "" {
			fmt.Fprintf(&b, "  server    %s\n", p.Server)
		}
	}
	if l := res.Config.Link; l != nil {
		fmt.Fprintf(&b, "  link      to the server: %s; to the client: %s (%s)\n", l.ToServer, l.ToClient, l.Where)
	}
	if l := res.Lateness; l != nil {
		fmt.Fprintf(&b, "  timers    %d measured on the wire: late by %.3f s at most, %.3f s on average\n", l.Timers, l.MaxS, l.MeanS)
	}
	fmt.Fprintf(&b, "  why       %s\n", res.Why)
	if res.Followup != "" {
		fmt.Fprintf(&b, "  then      %s\n", res.Followup)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "  note      %s\n", n)
	}
	fmt.Fprintf(&b, "  evidence  %s\n", res.RunDir)
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// writeTimeline merges every source onto the host axis into timeline.jsonl.
func (r *Run) writeTimeline(complete bool, reason string) error {
	r.mu.Lock()
	host := append([]timeline.Event(nil), r.host...)
	virt := append(r.libvirt[:0:0], r.libvirt...)
	r.mu.Unlock()
	streams := [][]timeline.Event{host}
	var lv []timeline.Event
	for _, ev := range virt {
		if e, err := timeline.NewEvent(timeline.SrcLibvirt, ev.Event, ev.Time, ev); err == nil {
			lv = append(lv, e)
		}
	}
	streams = append(streams, lv)
	guest := func(src, role string, p *proc) {
		if p == nil {
			return
		}
		clk, ok := r.clock[role]
		if !ok {
			return
		}
		var evs []timeline.Event
		for _, line := range p.rawLines() {
			var stamp struct {
				Ev     string `json:"ev"`
				MonoNS int64  `json:"mono_ns"`
				RealNS int64  `json:"real_ns"`
			}
			if json.Unmarshal(line, &stamp) != nil || stamp.Ev == "" || stamp.MonoNS == 0 {
				continue
			}
			at, unc := clk.HostTimeFromMono(stamp.MonoNS)
			evs = append(evs, timeline.Event{V: timeline.SchemaVersion, Src: src, Ev: stamp.Ev, HostNS: at.UnixNano(),
				UncertNS: int64(unc), MonoNS: stamp.MonoNS, RealNS: stamp.RealNS, Data: json.RawMessage(line)})
		}
		streams = append(streams, evs)
	}
	var marks []timeline.Event
	for _, m := range r.marks {
		if e, err := timeline.NewEvent(timeline.SrcConsoleServer, m.Name, m.At, m); err == nil {
			e.UncertNS = int64(m.Uncert)
			marks = append(marks, e)
		}
	}
	streams = append(streams, marks)
	guest(timeline.SrcClient, lab.RoleClient, r.client)
	guest(timeline.SrcServer, lab.RoleServer, r.server)
	guest(timeline.SrcSockdiagClient, lab.RoleClient, r.sockstat[lab.RoleClient])
	guest(timeline.SrcSockdiagServer, lab.RoleServer, r.sockstat[lab.RoleServer])
	merged := timeline.Merge(streams...)
	start := time.Now()
	if len(merged) > 0 {
		start = merged[0].Host()
	}
	w, err := timeline.Create(filepath.Join(r.Dir, timeline.FileName), start, map[string]any{"scenario": r.Scenario.Name, "run_dir": r.Dir})
	if err != nil {
		return err
	}
	for _, e := range merged {
		if err := w.Write(e); err != nil {
			w.Close(time.Now(), false, err.Error())
			return err
		}
	}
	return w.Close(time.Now(), complete, reason)
}
