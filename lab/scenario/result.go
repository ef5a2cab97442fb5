package scenario

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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
	// PredictedS is the predicted detection time in seconds after the fault,
	// where a model applies.
	PredictedS *float64 `json:"predicted_s,omitempty"`
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
	Errors     []string `json:"errors"`
	Error      string   `json:"error"`
	Why        string   `json:"why"`
	PredictedS *float64 `json:"predicted_s,omitempty"`
	Tolerance  string   `json:"tolerance,omitempty"`
	// TimedFrom says what the prediction counts from when it is not the
	// fault, and FromS where that is relative to the fault.
	TimedFrom string   `json:"timed_from,omitempty"`
	FromS     *float64 `json:"timed_from_s,omitempty"`
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
		Kernel: r.kernel, Sysctls: r.sysctls, Client: r.clientArgs()}
	if len(r.host) > 0 {
		res.Started = r.host[0].Host()
	}
	for role, clk := range r.clock {
		s := r.samples[role]
		_, unc := clk.HostTimeFromMono(s[len(s)-1].GuestMono)
		res.Clocks[role] = ClockStat{Samples: len(s), MinRTTms: float64(clk.MinRTT) / 1e6, UncertMS: float64(unc) / 1e6}
	}
	ob := r.observation()
	res.Observed = Observed{Error: ob.Error, Event: ob.Event, ClientExit: ob.Exit}
	var detect, plus time.Duration
	if ob.Error != "" && !r.faultStart.IsZero() {
		detect = ob.At.Sub(r.faultAt())
		plus = ob.Uncert + faultUncert
		res.Observed.DetectS, res.Observed.DetectPlusS = secs(detect), plus.Seconds()
		if !r.serverBack.IsZero() {
			res.Observed.ServerBackS = secs(r.serverBack.Sub(r.faultAt()))
			res.Observed.DetectAfterBackS = secs(ob.At.Sub(r.serverBack))
		}
	}
	res.Ladder, res.Retransmits = r.ladder()
	exp := r.Scenario.Expect(r)
	res.Expected = Expected{Errors: exp.Errors, Error: strings.Join(exp.Errors, " or "), Why: exp.Reason}
	origin, what := r.origin()
	checkDetect, checkPlus := detect, plus
	if exp.Detect > 0 {
		fromFault := origin.Sub(r.faultAt())
		res.PredictedS = secs(fromFault + exp.Detect)
		res.Expected.PredictedS, res.Expected.Tolerance = res.PredictedS, exp.Tol.String()
		if what != "the fault" {
			// The origin is measured, not issued: the fault call's
			// duration does not enter the comparison.
			res.Expected.TimedFrom, res.Expected.FromS = what, secs(fromFault)
			checkDetect, checkPlus = ob.At.Sub(origin), ob.Uncert
		}
	}
	if complete && (ob.Error != "" || slices.Contains(exp.Errors, model.NoError)) {
		c := exp.Check(ob.Error, checkDetect, checkPlus)
		res.Verdict, res.Why = c.Verdict, c.Why
	} else {
		res.Verdict = model.Unknown
		res.Why = "the client reported no error within the bound"
		if !complete {
			res.Why = "the run did not complete: " + reason
		}
	}
	res.Followup = r.followup
	r.mu.Lock()
	res.Notes = append([]string(nil), r.notes...)
	r.mu.Unlock()
	r.copyEvidence()
	if err := r.writeTimeline(complete, reason); err != nil {
		res.Notes = append(res.Notes, "timeline: "+err.Error())
	}
	return res
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

// copyEvidence copies this run's part of the consoles and the client's pcap
// of the lab link into the run folder.
func (r *Run) copyEvidence() {
	for _, g := range r.cfg.Lab.State.Guests {
		role := g.Role
		if err := copyFrom(g.Console, filepath.Join(r.Dir, role+".console.log"), r.consoleOff[role]); err != nil {
			r.note("copy console: " + err.Error())
		}
		for i, l := range g.Links {
			if err := copyFrom(l.Pcap, filepath.Join(r.Dir, fmt.Sprintf("%s.lab%d.pcap", role, i)), 0); err != nil {
				r.note("copy pcap: " + err.Error())
			}
		}
	}
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
	fmt.Fprintf(&b, "  expected  %s — %s\n", orNone(res.Expected.Error), res.Expected.Why)
	if res.Expected.PredictedS != nil {
		fmt.Fprintf(&b, "            predicted detection %.2f s after the fault (tolerance %s)\n", *res.Expected.PredictedS, res.Expected.Tolerance)
	}
	obs := orNone(res.Observed.Error)
	if res.Observed.DetectS != nil {
		obs += fmt.Sprintf(" %.3f s ± %.3f s after the fault", *res.Observed.DetectS, res.Observed.DetectPlusS)
	}
	if res.Expected.TimedFrom != "" {
		rel := fmt.Sprintf("%.3f s after the fault", *res.Expected.FromS)
		if *res.Expected.FromS < 0 {
			rel = fmt.Sprintf("%.3f s before the fault", -*res.Expected.FromS)
		}
		fmt.Fprintf(&b, "            timed from %s, %s\n", res.Expected.TimedFrom, rel)
	}
	fmt.Fprintf(&b, "  observed  %s (%d retransmissions", obs, res.Retransmits)
	if res.Observed.ClientExit != "" {
		fmt.Fprintf(&b, "; client %s", res.Observed.ClientExit)
	}
	b.WriteString(")\n")
	if res.Observed.DetectAfterBackS != nil {
		fmt.Fprintf(&b, "            server back after %.2f s; client learnt %.2f s later\n", *res.Observed.ServerBackS, *res.Observed.DetectAfterBackS)
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
