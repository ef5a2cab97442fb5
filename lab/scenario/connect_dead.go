package scenario

// connect-dead — UNP 4.3, connect's errors.
//
// Property: a connect to a host that is powered off is never answered. The
// client's kernel retransmits the SYN (tcp_syn_retries; on kernels 6.5 and
// later the first tcp_syn_linear_timeouts retransmissions keep the 1 s
// timer) and gives up with ETIMEDOUT at the first expiry where the count is
// reached or tcp_model_timeout(tcp_syn_retries, 1 s) has passed since the
// first SYN — unless the SYN waits for the host's address and the ARP
// resolution fails first: the kernel then answers the queued SYN with an
// ICMP host unreachable to itself, a hard error in SYN_SENT, and connect
// fails with EHOSTUNREACH. A live host without a listener answers the SYN
// with RST: ECONNREFUSED at once.
//
// The fault is the precondition: the server is made dead (powered off, or
// its listener killed) before the client connects, and detection counts
// from the connect call.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/provision/guestsysctl"
)

var connectDead = Scenario{
	Name:    "connect-dead",
	Summary: "the client connects while the server is powered off (--target off) or up without a listener (--target no-listener)",
	Property: "a dead host never answers: SYN retries, then ETIMEDOUT — or EHOSTUNREACH when the ARP resolution fails first; " +
		"a live host without a listener answers RST: ECONNREFUSED",
	Own: []string{"target", "neigh"},
	Defaults: func(o *Options) {
		if o.Target == "" {
			o.Target = "off"
		}
		if o.Neigh == "" {
			o.Neigh = "warm"
		}
	},
	Check: func(o Options) error {
		if o.Idle {
			return fmt.Errorf("--idle does not apply to connect-dead: the connect itself is observed")
		}
		return nil
	},
	StartsClient: true,
	Fault:        connectDeadFault,
	Expect:       connectDeadExpect,
	Bound:        connectDeadBound,
	Heal: func(ctx context.Context, r *Run) error {
		if r.Opt.Target == "off" {
			return r.ensureServer(ctx)
		}
		return nil
	},
}

// neighKeys are the client's neighbour settings for its lab interface that
// decide how long a resolution of the dead server takes.
var neighKeys = []string{"mcast_solicit", "app_solicit", "ucast_solicit", "retrans_time_ms"}

// connectDeadFault makes the server dead, sets the client's neighbour entry
// for it, starts the client and pins the fault to its connect call.
func connectDeadFault(ctx context.Context, r *Run) error {
	srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
	ip := srv.LabIP()
	if err := r.readNeighSettings(ctx); err != nil {
		return err
	}
	if r.Opt.Neigh == "warm" {
		// A fresh resolution: the server's ARP reply makes the client's
		// entry REACHABLE (for base_reachable_time/2..3/2), so the SYNs go
		// out on the wire. An echo reply alone would not confirm a stale
		// entry: it would go DELAY, then probe the powered-off server.
		if _, err := r.sh(ctx, lab.RoleClient, "ip neigh flush to "+ip+" && ping -c 1 -W 3 "+ip+" >/dev/null"); err != nil {
			return fmt.Errorf("warm the client's neighbour entry (ping %s): %w", ip, err)
		}
	}
	err := r.markFault("connect-dead "+r.Opt.Target, func() error {
		switch r.Opt.Target {
		case "off":
			if err := r.cutPower(ctx, srv.Domain); err != nil {
				return err
			}
			r.dropConn(lab.RoleServer)
		case "no-listener":
			if err := r.closeListener(ctx); err != nil {
				return err
			}
		}
		if r.Opt.Neigh == "cold" {
			if _, err := r.sh(ctx, lab.RoleClient, "ip neigh flush to "+ip); err != nil {
				return fmt.Errorf("flush the client's neighbour entry: %w", err)
			}
		}
		state, _ := r.sh(ctx, lab.RoleClient, "ip neigh show "+ip)
		state = strings.TrimSpace(state)
		if state == "" {
			state = "none"
		}
		r.hostEvent("neigh", map[string]any{"role": lab.RoleClient, "addr": ip, "entry": state})
		r.log.Info("the client's neighbour entry before the connect", "neigh", r.Opt.Neigh, "entry", state)
		r.mu.Lock()
		r.notes = append(r.notes, fmt.Sprintf("the client's neighbour entry for %s before the connect (--neigh %s): %s", ip, r.Opt.Neigh, state))
		r.mu.Unlock()
		c, err := r.guest(ctx, lab.RoleClient)
		if err != nil {
			return err
		}
		if r.client, err = startProc(ctx, c, r.Dir, "client", lab.RoleClient, r.clientArgs()); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return r.client.waitFor(wctx, "the connect call", func(evs []echo.Event) bool { return countEv(evs, "connecting") > 0 })
	})
	if err != nil {
		return err
	}
	r.pinConnect(ctx, ip)
	return nil
}

// readNeighSettings reads the client's neighbour settings of its lab
// interface into the run's sysctls (net.ipv4.neigh.IFACE.KEY).
func (r *Run) readNeighSettings(ctx context.Context) error {
	cl, _ := r.cfg.Lab.State.Guest(lab.RoleClient)
	out, err := r.sh(ctx, lab.RoleClient, "ip -o -4 addr show")
	if err != nil {
		return err
	}
	iface := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[2] == "inet" && strings.HasPrefix(f[3], cl.LabIP()+"/") {
			iface = strings.TrimSuffix(f[1], ":")
		}
	}
	if iface == "" || guestsysctl.CheckKey("net.ipv4.neigh."+iface+".mcast_solicit") != nil {
		return fmt.Errorf("the client's lab interface (%s) not found in %q", cl.LabIP(), out)
	}
	keys := make([]string, len(neighKeys))
	for i, k := range neighKeys {
		keys[i] = "net.ipv4.neigh." + iface + "." + k
	}
	out, err = r.sh(ctx, lab.RoleClient, guestsysctl.Name+" get "+strings.Join(keys, " "))
	if err != nil {
		return err
	}
	vals := map[string]string{}
	if err := json.Unmarshal([]byte(out), &vals); err != nil {
		return fmt.Errorf("%s get on client: %w", guestsysctl.Name, err)
	}
	if r.sysctls[lab.RoleClient] == nil {
		r.sysctls[lab.RoleClient] = map[string]string{}
	}
	for k, v := range vals {
		r.sysctls[lab.RoleClient][k] = v
	}
	return nil
}

// closeListener kills the echo server and waits until nothing listens on
// the echo port of the server guest.
func (r *Run) closeListener(ctx context.Context) error {
	r.server.stop()
	listening := fmt.Sprintf(":%04X 00000000:0000 0A", EchoPort)
	for range 50 {
		out, err := r.sh(ctx, lab.RoleServer, "killall -9 hostlab-echo-server 2>/dev/null; cat /proc/net/tcp")
		if err != nil {
			return err
		}
		if !strings.Contains(out, listening) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("port %d still listening on the server after its echo server was killed", EchoPort)
}

// pinConnect pins the fault to the client's connect call: from its
// connecting event to the first frame the connect put on the lab link (its
// SYN, or the ARP request its SYN waits on), both on the client's clock.
func (r *Run) pinConnect(ctx context.Context, serverIP string) {
	clk, ok := r.clock[lab.RoleClient]
	if !ok {
		r.note("no client clock fit: the connect call is bounded by the fault call only")
		return
	}
	var con echo.Event
	for _, e := range r.client.snapshot() {
		if e.Ev == "connecting" {
			con = e
			break
		}
	}
	at, unc := clk.HostTimeFromMono(con.MonoNS)
	from, to := at.Add(-unc), at.Add(unc)
	first := time.Time{}
	server, _ := netip.ParseAddr(serverIP)
	deadline := time.Now().Add(3 * time.Second)
	for first.IsZero() && time.Now().Before(deadline) && ctx.Err() == nil {
		for _, f := range r.liveFrames() {
			if f.At.Before(from) {
				continue
			}
			if a, ok := parseARP(f.Data); ok && a.Request && a.Target == server {
				first = f.At
				break
			}
			if _, dst, s, ok := ipv4TCP(f); ok && dst.Addr == server && dst.Port == EchoPort && s.Has(tcpSYN) {
				first = f.At
				break
			}
		}
		if first.IsZero() {
			time.Sleep(100 * time.Millisecond)
		}
	}
	what := "the client's connect call: from its connecting event to the first frame the connect put on the lab link (its SYN, or the ARP request the SYN waits on), both on the client's clock"
	if first.IsZero() {
		r.note("no frame of the connect in the client's capture within 3 s: the connect call is bounded by the connecting event alone")
		what = "the client's connect call: its connecting event on the client's clock"
	} else if first.After(to) {
		to = first.Add(unc)
	}
	r.pinFault("connect_call", from, to, what, map[string]any{"connecting_mono_ns": con.MonoNS})
}

// liveFrames are the client capture's frames so far on the host axis.
func (r *Run) liveFrames() []pcapRecord {
	clk, ok := r.clock[lab.RoleClient]
	if r.capture == nil || !ok {
		return nil
	}
	var out []pcapRecord
	for _, line := range r.capture.rawLines() {
		var rec struct {
			Ev      string `json:"ev"`
			StampNS int64  `json:"stamp_ns"`
			Len     int    `json:"len"`
			Data    []byte `json:"data"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Ev != "frame" || rec.StampNS == 0 {
			continue
		}
		at, _ := clk.HostTimeFromReal(rec.StampNS)
		out = append(out, pcapRecord{At: at, Data: rec.Data, Len: rec.Len})
	}
	return out
}

// synCase reads a connect-dead run's evidence into the SYN rule's case.
func synCase(ev *Evidence) (SynCase, *GuestEvent, error) {
	var con *GuestEvent
	for i, e := range ev.Client {
		if e.Ev == "connecting" {
			con = &ev.Client[i]
			break
		}
	}
	if con == nil {
		return SynCase{}, nil, fmt.Errorf("the client logged no connect call")
	}
	server, err := parseEndpoint(con.Peer)
	if err != nil {
		return SynCase{}, con, fmt.Errorf("connect target %q: %w", con.Peer, err)
	}
	c := SynCase{HZ: model.DefaultHZ}
	var ok bool
	if c.Retries, ok = ev.sysctlInt(lab.RoleClient, "net.ipv4.tcp_syn_retries"); !ok {
		return c, con, fmt.Errorf("the client's tcp_syn_retries was not read back")
	}
	c.Linear, c.LinearKnown = ev.sysctlInt(lab.RoleClient, "net.ipv4.tcp_syn_linear_timeouts")
	c.UserTimeout = ev.Opt.UserTimeout
	if ev.WireFile == "" {
		return c, con, fmt.Errorf("no capture of the lab link")
	}
	frames, err := readFrames(ev.WireFile)
	if err != nil {
		return c, con, fmt.Errorf("client capture: %w", err)
	}
	w := analyseSynWire(frames, server, con.At.Add(-con.Uncert))
	c.First, c.RST = w.First(), w.RST
	for _, s := range w.SYNs {
		c.SYNs = append(c.SYNs, s.At)
	}
	for _, e := range ev.Client {
		if e.Ev == "tcp_info" && e.Reason == "connecting" && e.TCPInfo != nil {
			c.Info = append(c.Info, SynSample{At: e.At, Uncert: e.Uncert, State: e.TCPInfo.State,
				Retransmits: int(e.TCPInfo.Retransmits), RTO: time.Duration(e.TCPInfo.RTOus) * time.Microsecond})
		}
	}
	if n, ok := neighSettings(ev); ok {
		c.Neigh = n
		c.Resolutions = w.resolutions(n.Interval(), max(n.Requests(), 1))
	} else if len(w.Requests) > 0 {
		return c, con, fmt.Errorf("the client's neighbour settings for its lab interface were not read back")
	}
	return c, con, nil
}

// neighSettings reads the client's lab interface's neighbour settings.
func neighSettings(ev *Evidence) (model.Neigh, bool) {
	var n model.Neigh
	found := 0
	for k, v := range ev.Sysctls[lab.RoleClient] {
		rest, ok := strings.CutPrefix(k, "net.ipv4.neigh.")
		iface, key, ok2 := strings.Cut(rest, ".")
		if !ok || !ok2 || iface == "default" {
			continue
		}
		var x int
		if _, err := fmt.Sscan(v, &x); err != nil {
			continue
		}
		switch key {
		case "mcast_solicit":
			n.McastSolicit = x
		case "app_solicit":
			n.AppSolicit = x
		case "ucast_solicit":
			n.UcastSolicit = x
		case "retrans_time_ms":
			n.RetransTime = time.Duration(x) * time.Millisecond
		default:
			continue
		}
		found++
	}
	return n, found == len(neighKeys)
}

// connectDeadExpect applies the SYN rule to the connect's evidence.
func connectDeadExpect(ev *Evidence, k Rules) Judgement {
	c, _, err := synCase(ev)
	if err != nil {
		return missing(err.Error())
	}
	rule := k.Syn
	if rule == nil {
		rule = Kernel.Syn
	}
	o, err := rule(c)
	j := Judgement{Late: o.Late}
	switch {
	case errorsIsContradicted(err):
		j.Exp = model.Expectation{Errors: []string{model.ETIMEDOUT, model.EHOSTUNREACH}, Reason: "a connect to a silent host"}
		j.Checks = []model.Result{{Verdict: model.Unexpected, Why: err.Error()}}
		return j
	case err != nil:
		return missing("connect window: " + err.Error())
	}
	j.Checks = o.Checks
	j.Exp = model.Expectation{Errors: o.Errors, Reason: o.Why + "; detection counts from the connect call", Window: o.Span.window(ev.FaultAt)}
	j.Kernel = connectKernelEnd(ev, c)
	return j
}

// connectKernelEnd brackets when the client's kernel ended the connect: a
// RST on the wire pins it; else the connecting socket's last TCP_INFO
// sample still in SYN_SENT and the first CLOSE one, or the client's report.
func connectKernelEnd(ev *Evidence, c SynCase) *Instant {
	if !c.RST.IsZero() {
		return &Instant{Lo: c.RST, Hi: c.RST, Source: "the server's RST on the client's wire"}
	}
	ob := ev.observation()
	if ob.At.IsZero() {
		return nil
	}
	var open, closed *SynSample
	for i, s := range c.Info {
		if s.At.After(ob.At.Add(ob.Uncert)) {
			break
		}
		if s.State == "SYN_SENT" {
			open = &c.Info[i]
		} else if open != nil && closed == nil {
			closed = &c.Info[i]
		}
	}
	if open == nil {
		return nil
	}
	in := &Instant{Lo: open.At.Add(-open.Uncert), Hi: ob.At.Add(ob.Uncert),
		Source: "the connecting socket's TCP_INFO (last SYN_SENT sample) and the client's report"}
	if closed != nil {
		in.Hi, in.Source = closed.At.Add(closed.Uncert), "the connecting socket's TCP_INFO (last SYN_SENT, first closed sample)"
	}
	return in
}

// connectDeadBound watches until the SYN retries' end plus half a minute.
func connectDeadBound(ev *Evidence) time.Duration {
	if ev.Opt.Target == "no-listener" {
		return 30 * time.Second
	}
	retries, ok := ev.sysctlInt(lab.RoleClient, "net.ipv4.tcp_syn_retries")
	if !ok {
		retries = model.DefaultSynRetries
	}
	linear, _ := ev.sysctlInt(lab.RoleClient, "net.ipv4.tcp_syn_linear_timeouts")
	p, err := model.PlanConnect(model.SynInput{Retries: retries, Linear: linear, UserTimeout: ev.Opt.UserTimeout})
	if err != nil {
		return 3 * time.Minute
	}
	return p.Abort + 30*time.Second
}
