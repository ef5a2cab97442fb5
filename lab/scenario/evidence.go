package scenario

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/timeline"
	"github.com/hostlab/hostlab/provision"
)

// Host events the verdicts read back from a timeline.
const (
	evServerBack    = "server_back"
	evClientExit    = "client_exit"
	evClientStopped = "client_stopped"
)

// Console marks: steps of the server's init that verdicts use.
const (
	markSigterm = "sigterm"
	markSigkill = "sigkill"
	markLinkUp  = "link_up"
	markBooting = "booting"
	markExited  = "all_exited"
)

// GuestEvent is an echo program's event placed on the host's clock.
type GuestEvent struct {
	echo.Event
	// At is the host time of the event and Uncert its ± bound.
	At     time.Time
	Uncert time.Duration
}

// Mark is a step of the server's init, from its serial console, placed on
// the host's clock.
type Mark struct {
	// Name is markSigterm, markSigkill, markLinkUp or markBooting.
	Name string `json:"mark"`
	// Boot counts the server's boots in the run: 0 before the fault, 1 after
	// a reboot.
	Boot int `json:"boot"`
	// At is the host time and Uncert its ± bound.
	At     time.Time     `json:"-"`
	Uncert time.Duration `json:"-"`
	// Line is the console line.
	Line string `json:"line"`
}

// Exit is how the client program ended.
type Exit struct {
	// Status is the exit status when it exited.
	Status int `json:"status"`
	// Signal is the signal name without SIG when a signal killed it.
	Signal string `json:"signal,omitempty"`
	// Lost says the session was lost, so the end is unknown.
	Lost string `json:"lost,omitempty"`
	// ByHostlab is true when hostlab killed the client (its own stop).
	ByHostlab bool `json:"by_hostlab,omitempty"`
	// At is when the host learnt of the exit.
	At time.Time `json:"-"`
}

// Evidence is everything a verdict reads, on the host's time axis. It comes
// from a live run (Run.evidence) or from a run folder (LoadEvidence), so a
// recorded run can be judged again, with the kernel's rules or any others.
type Evidence struct {
	// Scenario is the scenario's name.
	Scenario string
	// Opt are the run's options after defaults.
	Opt Options
	// WritesPerLine is how many writes the client makes per line (the
	// scenario's; 0 means one).
	WritesPerLine int
	// Sysctls are the values in force during the run, per role.
	Sysctls map[string]map[string]string
	// Grace is the server init's SIGTERM to SIGKILL grace.
	Grace time.Duration
	// Started is when the run began.
	Started time.Time
	// FaultStart and FaultEnd bracket the fault call.
	FaultStart, FaultEnd time.Time
	// FaultAt is the fault instant detection counts from, ±FaultUncert: the
	// middle of the window the fault was pinned to (a power cut's pause, a
	// kill between two guest clock stamps), else the start of the call.
	FaultAt     time.Time
	FaultUncert time.Duration
	// ServerBack is when the rebooted server's init reported ready.
	ServerBack time.Time
	// Healed is when a cut link was restored (partition), ±HealUncert: the
	// middle of the heal call.
	Healed     time.Time
	HealUncert time.Duration
	// Client are the client's events.
	Client []GuestEvent
	// Server are the echo server's events.
	Server []GuestEvent
	// ServerSocks are the server kernel's sock_diag samples of the echo
	// port (hostlab-sockstat's sock and sock_gone lines).
	ServerSocks []GuestEvent
	// Marks are the server console's marks.
	Marks []Mark
	// Exit is how the client ended; nil while it runs.
	Exit *Exit
	// Stopped is when hostlab stopped watching and killed the client; zero
	// when the client ended by itself.
	Stopped time.Time
	// Wire is the client's capture of the connection; WireErr says why it
	// is missing.
	Wire    *Wire
	WireErr string
	// WireFile is the client's capture (client.wire.pcap), for scenarios
	// that read more of it than one connection's segments (connect-dead:
	// the SYNs of a connection that never opened, and ARP).
	WireFile string
	// Sockdiag are the sock_diag samples of the echo port's sockets, by
	// role (sockstat-ROLE.jsonl), on the host axis.
	Sockdiag map[string][]SockSample
	// ICMP are the ICMP destination unreachables in the client's capture
	// from the run's start.
	ICMP []icmpEvent
}

// mark returns the first mark named name of the given boot.
func (ev *Evidence) mark(name string, boot int) (Mark, bool) {
	for _, m := range ev.Marks {
		if m.Name == name && m.Boot == boot {
			return m, true
		}
	}
	return Mark{}, false
}

// sysctl returns a client-side sysctl as an int.
func (ev *Evidence) sysctlInt(role, key string) (int, bool) {
	v, err := strconv.Atoi(strings.TrimSpace(ev.Sysctls[role][key]))
	return v, err == nil
}

// connectEvent is the client's connect event, with its socket options.
func (ev *Evidence) connectEvent() (GuestEvent, bool) {
	for _, e := range ev.Client {
		if e.Ev == "connect" {
			return e, true
		}
	}
	return GuestEvent{}, false
}

// evidence gathers the live run's evidence so far.
func (r *Run) evidence() *Evidence {
	ev := &Evidence{Scenario: r.Scenario.Name, Opt: r.Opt, Sysctls: r.sysctls}
	if r.cfg.Lab != nil {
		ev.Grace = r.cfg.Lab.State.Grace
	}
	r.mu.Lock()
	ev.FaultStart, ev.FaultEnd, ev.ServerBack = r.faultStart, r.faultEnd, r.serverBack
	ev.Stopped = r.stoppedAt
	ev.Marks = append([]Mark(nil), r.marks...)
	if r.cut != nil && !r.cut.heal.Issued.IsZero() {
		ev.Healed, ev.HealUncert = r.cut.heal.At(), r.cut.heal.Uncert()
	}
	if len(r.host) > 0 {
		ev.Started = r.host[0].Host()
	}
	r.mu.Unlock()
	place := func(role string, p *proc) []GuestEvent {
		clk, ok := r.clock[role]
		if p == nil || !ok {
			return nil
		}
		var out []GuestEvent
		for _, e := range p.snapshot() {
			at, unc := clk.HostTimeFromMono(e.MonoNS)
			out = append(out, GuestEvent{Event: e, At: at, Uncert: unc})
		}
		return out
	}
	if !ev.FaultStart.IsZero() {
		ev.FaultAt, ev.FaultUncert, _ = r.faultInstant()
	}
	ev.Client = place(lab.RoleClient, r.client)
	ev.Server = place(lab.RoleServer, r.server)
	ev.ServerSocks = place(lab.RoleServer, r.sockstat[lab.RoleServer])
	ev.Sockdiag = r.sockdiagSamples()
	if r.client != nil {
		if ex, done := r.client.exited(); done {
			ev.Exit = exitOf(ex, !ev.Stopped.IsZero() && !ex.At.Before(ev.Stopped))
		}
	}
	return ev
}

// exitOf turns a process exit into an Exit.
func exitOf(ex procExit, byHostlab bool) *Exit {
	out := &Exit{Status: ex.Status, At: ex.At, ByHostlab: byHostlab}
	var sig *provision.ExitSignalError
	switch {
	case errors.As(ex.Err, &sig):
		out.Signal = sig.Signal
	case ex.Err != nil:
		out.Lost = ex.Err.Error()
	}
	return out
}

// attachWire reads the client's capture of the run into ev.
func (ev *Evidence) attachWire(pcap string) {
	ev.WireFile = pcap
	con, ok := ev.connectEvent()
	if !ok {
		ev.WireErr = "the client logged no connection"
		return
	}
	local, err1 := parseEndpoint(con.Local)
	peer, err2 := parseEndpoint(con.Peer)
	if err1 != nil || err2 != nil {
		ev.WireErr = fmt.Sprintf("connection endpoints %q, %q unreadable", con.Local, con.Peer)
		return
	}
	frames, err := readFrames(pcap)
	if err != nil {
		ev.WireErr = "client capture: " + err.Error()
		return
	}
	since := ev.Started
	if since.IsZero() {
		since = con.At.Add(-time.Second)
	}
	for _, f := range frames {
		if ic, ok := parseICMPUnreach(f.Data); ok && !f.At.Before(since) {
			ic.At = f.At
			ev.ICMP = append(ev.ICMP, ic)
		}
	}
	segs := tcpSegments(frames, local, peer, since)
	if len(segs) == 0 {
		ev.WireErr = "the client capture holds no segment of the connection"
		return
	}
	fault := ev.FaultStart
	if fault.IsZero() {
		fault = time.Now()
	}
	w := analyseWire(segs, fault)
	ev.Wire = &w
}

// consoleLine matches the guest init's console lines:
// "hostlab-init[12.345678] server 2026-…Z: message".
var consoleLine = regexp.MustCompile(`^hostlab-init\[(\d+)\.(\d{6})\] \S+ \S+: (.*)$`)

// consoleMarks reads the steps verdicts use from a console log that starts
// at the fault: boot is 0 for the lines before the first "booting" line (the
// boot the fault hit) and counts boots after it; place maps a boot's
// monotonic stamps to the host axis (false: no clock for that boot, the
// line is skipped).
func consoleMarks(path string, labIP string, place func(boot int, mono int64) (time.Time, time.Duration, bool)) ([]Mark, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Mark
	boot := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := consoleLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		us, _ := strconv.ParseInt(m[2], 10, 64)
		mono := sec*1e9 + us*1e3
		msg := m[3]
		var name string
		switch {
		case strings.HasPrefix(msg, "booting:"):
			name = markBooting
		case strings.Contains(msg, "sending SIGTERM to all processes"):
			name = markSigterm
		case strings.HasPrefix(msg, "sending SIGKILL"):
			name = markSigkill
		case msg == "all processes exited" || msg == "syncing file systems":
			// The init syncs once every process is gone (or the wait timed out).
			name = markExited
		case strings.HasPrefix(msg, "net: ") && strings.Contains(msg, " up with "+labIP+"/"):
			name = markLinkUp
		default:
			continue
		}
		if name == markBooting {
			boot++
		}
		at, unc, ok := place(boot, mono)
		if !ok {
			continue
		}
		out = append(out, Mark{Name: name, Boot: boot, At: at, Uncert: unc, Line: m[0]})
	}
	return out, sc.Err()
}

// LoadEvidence reads a run folder (result.json, timeline.jsonl and the
// client's capture) back into Evidence.
func LoadEvidence(dir string) (*Evidence, *Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("load run %s: %w", dir, err)
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, nil, fmt.Errorf("load run %s: result.json: %w", dir, err)
	}
	evs, err := timeline.Read(filepath.Join(dir, timeline.FileName))
	if err != nil {
		return nil, nil, fmt.Errorf("load run %s: %w", dir, err)
	}
	ev := &Evidence{Scenario: res.Scenario, Opt: res.Config.Options, Sysctls: res.Config.Sysctls,
		Grace: time.Duration(res.Config.GraceNS), Started: res.Started}
	for _, e := range evs {
		switch e.Src {
		case timeline.SrcClient, timeline.SrcServer:
			var ee echo.Event
			if e.DecodeData(&ee) != nil {
				continue
			}
			ge := GuestEvent{Event: ee, At: e.Host(), Uncert: e.Uncert()}
			if e.Src == timeline.SrcClient {
				ev.Client = append(ev.Client, ge)
			} else {
				ev.Server = append(ev.Server, ge)
			}
		case timeline.SrcSockdiagClient, timeline.SrcSockdiagServer:
			ev.addSockdiag(e)
			var ee echo.Event
			if e.Src == timeline.SrcSockdiagServer && e.DecodeData(&ee) == nil {
				ev.ServerSocks = append(ev.ServerSocks, GuestEvent{Event: ee, At: e.Host(), Uncert: e.Uncert()})
			}
		case timeline.SrcConsoleServer:
			var m Mark
			if e.DecodeData(&m) == nil {
				m.At, m.Uncert = e.Host(), e.Uncert()
				ev.Marks = append(ev.Marks, m)
			}
		case timeline.SrcHost:
			switch e.Ev {
			case timeline.EvFaultStart:
				if ev.FaultStart.IsZero() {
					ev.FaultStart = e.Host()
				}
			case timeline.EvFaultEnd:
				if ev.FaultEnd.IsZero() {
					ev.FaultEnd = e.Host()
				}
			case evServerBack:
				ev.ServerBack = e.Host()
			case evHealed:
				ev.Healed, ev.HealUncert = e.Host(), e.Uncert()
			case evClientStopped:
				ev.Stopped = e.Host()
			case evClientExit:
				var x Exit
				if e.DecodeData(&x) == nil {
					x.At = e.Host()
					ev.Exit = &x
				}
			}
		}
	}
	if !ev.FaultStart.IsZero() {
		ev.FaultAt, ev.FaultUncert = ev.FaultStart, ev.FaultEnd.Sub(ev.FaultStart)
		if !res.FaultAt.IsZero() && res.FaultUncertS != nil {
			ev.FaultAt, ev.FaultUncert = res.FaultAt, time.Duration(*res.FaultUncertS*1e9)
		}
	}
	ev.attachWire(filepath.Join(dir, wireFile))
	return ev, &res, nil
}
