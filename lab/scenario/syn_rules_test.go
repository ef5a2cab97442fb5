package scenario

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab/model"
)

const sec = time.Second

// at returns offsets from t0.
func offsets(t0 time.Time, ds ...time.Duration) []time.Time {
	var out []time.Time
	for _, d := range ds {
		out = append(out, t0.Add(d))
	}
	return out
}

// TestSynCountEndsIt: on 6.1 (no linear timeouts) tcp_syn_retries=2 sends
// SYNs at 0, 1 and 3 s and the count ends the connect at the expiry 4 s
// later; the wrong model failing at the last retransmission says 3 s.
func TestSynCountEndsIt(t *testing.T) {
	t0 := time.Unix(1796322000, 0)
	c := SynCase{First: t0, SYNs: offsets(t0, 0, 1010*ms, 3030*ms), Retries: 2, HZ: 250}
	o, err := kernelSyn(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Errors, []string{model.ETIMEDOUT}) || o.Span.Nominal != t0.Add(7030*ms) {
		t.Fatalf("errors %v, nominal %v; want ETIMEDOUT at 7.03 s", o.Errors, o.Span.Nominal.Sub(t0))
	}
	// Granule of a 4 s timer: 256 ms; measured lateness 20 ms.
	if got := o.Span.Hi.Sub(o.Span.Nominal); got != 276*ms {
		t.Errorf("allowance %v, want 276ms", got)
	}
	if len(o.Late) != 2 || o.Late[0] != 10*ms || o.Late[1] != 20*ms {
		t.Errorf("lateness %v, want 10ms, 20ms", o.Late)
	}
	w, _ := WrongSynAbortAtLast.Syn(c)
	if w.Span.Nominal != t0.Add(3030*ms) {
		t.Errorf("at-last model nominal %v, want the last SYN", w.Span.Nominal.Sub(t0))
	}
	// One retransmission more than the count allows contradicts the rule.
	c.SYNs = offsets(t0, 0, sec, 3*sec, 7*sec)
	if _, err := kernelSyn(c); !errors.Is(err, errContradicted) {
		t.Errorf("3 retransmissions for tcp_syn_retries=2: %v, want a contradiction", err)
	}
}

// TestSynTimeBoundWithLinearTimeouts: on 6.5+ with tcp_syn_linear_timeouts=4,
// tcp_syn_retries=2 gives SYNs at 0..5 s and the time bound (7 s) ends the
// connect before the count (6); by count alone it would retransmit once
// more and fail at 11 s, and doubling from the start contradicts the wire.
func TestSynTimeBoundWithLinearTimeouts(t *testing.T) {
	t0 := time.Unix(1796322000, 0)
	c := SynCase{First: t0, SYNs: offsets(t0, 0, sec, 2*sec, 3*sec, 4*sec, 5*sec), Retries: 2, Linear: 4, LinearKnown: true, HZ: 250}
	for k := 1; k <= 5; k++ {
		rto := sec
		if k == 5 {
			rto = 2 * sec
		}
		c.Info = append(c.Info, SynSample{At: t0.Add(time.Duration(k)*sec + ms), State: "SYN_SENT", Retransmits: k, RTO: rto})
	}
	o, err := kernelSyn(c)
	if err != nil {
		t.Fatal(err)
	}
	if o.Span.Nominal != t0.Add(7*sec) || !strings.Contains(o.Why, "time bound") {
		t.Errorf("nominal %v (%s), want 7 s by the time bound", o.Span.Nominal.Sub(t0), o.Why)
	}
	for _, ch := range o.Checks {
		if ch.Verdict != model.Expected {
			t.Errorf("check %s", ch.Why)
		}
	}
	w, err := WrongSynCountOnly.Syn(c)
	if err != nil || w.Span.Nominal != t0.Add(11*sec) {
		t.Errorf("count-only: nominal %v, %v; want 11 s", w.Span.Nominal.Sub(t0), err)
	}
	if _, err := WrongSynNoLinear.Syn(c); !errors.Is(err, errContradicted) {
		t.Errorf("no linear phase: %v, want 5 retransmissions to contradict a count of 2", err)
	}
}

// TestSynRTOCheck: the RTO TCP_INFO shows after each retransmission is the
// ladder's; a kernel that doubled it on 6.12 would be caught.
func TestSynRTOCheck(t *testing.T) {
	t0 := time.Unix(1796322000, 0)
	c := SynCase{First: t0, SYNs: offsets(t0, 0, sec, 3*sec), Retries: 2, Linear: 4, LinearKnown: true,
		Info: []SynSample{{At: t0.Add(sec), State: "SYN_SENT", Retransmits: 1, RTO: 2 * sec}}}
	p, _ := model.PlanConnect(model.SynInput{Retries: 2, Linear: 4})
	if r := synRTOCheck(c, p); r.Verdict != model.Unexpected {
		t.Errorf("RTO doubled after the first retransmission with linear timeouts: %v %s", r.Verdict, r.Why)
	}
	c.Info[0].RTO = sec
	if r := synRTOCheck(c, p); r.Verdict != model.Expected {
		t.Errorf("linear RTO: %v %s", r.Verdict, r.Why)
	}
}

// TestSynNeighbourFailure: a SYN that waits on ARP for a dead host fails
// when the resolution does (three requests a second apart, FAILED a second
// after the last), with EHOSTUNREACH — or ETIMEDOUT when the backoff revert
// clocks the SYN timer out and the retries are spent.
func TestSynNeighbourFailure(t *testing.T) {
	t0 := time.Unix(1796322000, 0)
	neigh := model.LinuxNeigh()
	// Cold entry: the SYN itself waits; one retransmission (queued) by
	// the failure at 3 s.
	cold := SynCase{First: t0, Retries: 6, HZ: 250, Neigh: neigh,
		Resolutions: [][]time.Time{offsets(t0, 0, 1010*ms, 2020*ms)},
		Info: []SynSample{{At: t0.Add(5 * ms), State: "SYN_SENT"},
			{At: t0.Add(1005 * ms), State: "SYN_SENT", Retransmits: 1, RTO: 2 * sec}}}
	o, err := kernelSyn(cold)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Errors, []string{model.EHOSTUNREACH}) || o.Span.Nominal != t0.Add(3020*ms) {
		t.Errorf("cold: %v at %v (%s), want EHOSTUNREACH at 3.02 s", o.Errors, o.Span.Nominal.Sub(t0), o.Why)
	}
	// With one SYN retry the SYN timer ends it at 3 s too: either comes
	// first, and a failure first finds the retry spent: ETIMEDOUT either way.
	one := cold
	one.Retries = 1
	if o, _ := kernelSyn(one); !slices.Contains(o.Errors, model.ETIMEDOUT) || o.Span.Lo.After(t0.Add(3*sec)) {
		t.Errorf("cold, one retry: %v from %v (%s)", o.Errors, o.Span.Lo.Sub(t0), o.Why)
	}
	if w, _ := WrongSynNoNeighbour.Syn(cold); !slices.Equal(w.Errors, []string{model.ETIMEDOUT}) {
		t.Errorf("neighbour-blind model: %v, want ETIMEDOUT", w.Errors)
	}
	// The real run: warm entry gone FAILED during the ladder; the second
	// retransmission waits, its resolution fails at 6.12 s, the revert
	// clocks the timer out with both retries spent: ETIMEDOUT at 6.12 s.
	warm := SynCase{First: t0, SYNs: offsets(t0, 0, 1032*ms), Retries: 2, HZ: 250, Neigh: neigh,
		Resolutions: [][]time.Time{offsets(t0, 3064*ms, 4098*ms, 5110*ms)},
		Info: []SynSample{{At: t0.Add(25 * ms), State: "SYN_SENT"},
			{At: t0.Add(1040 * ms), State: "SYN_SENT", Retransmits: 1, RTO: 2 * sec},
			{At: t0.Add(3050 * ms), State: "SYN_SENT", Retransmits: 1, RTO: 2 * sec},
			{At: t0.Add(3060 * ms), State: "SYN_SENT", Retransmits: 2, RTO: 4 * sec}}}
	o, err = kernelSyn(warm)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Errors, []string{model.ETIMEDOUT}) || o.Span.Nominal != t0.Add(6110*ms) || !strings.Contains(o.Why, "reverted RTO") {
		t.Errorf("warm: %v at %v (%s), want ETIMEDOUT at 6.11 s by the revert", o.Errors, o.Span.Nominal.Sub(t0), o.Why)
	}
	// With retries left the same failure is EHOSTUNREACH.
	warm.Retries = 6
	if o, _ = kernelSyn(warm); !slices.Equal(o.Errors, []string{model.EHOSTUNREACH}) {
		t.Errorf("warm, 6 retries: %v (%s), want EHOSTUNREACH", o.Errors, o.Why)
	}
}

// TestSynRefused: a live host without a listener answers with RST.
func TestSynRefused(t *testing.T) {
	t0 := time.Unix(1796322000, 0)
	c := SynCase{First: t0, SYNs: offsets(t0, 0), RST: t0.Add(40 * ms), Retries: 6, HZ: 250}
	o, err := kernelSyn(c)
	if err != nil || !slices.Equal(o.Errors, []string{model.ECONNREFUSED}) || o.Span.Hi != t0.Add(sec) || o.Checks[0].Verdict != model.Expected {
		t.Fatalf("refused: %+v, %v", o, err)
	}
	c.SYNs = offsets(t0, 0, sec)
	c.RST = t0.Add(1040 * ms)
	if o, _ := kernelSyn(c); o.Checks[0].Verdict != model.Unexpected {
		t.Errorf("RST only for the retransmission: %s", o.Checks[0].Why)
	}
	if w, _ := WrongClosedPortDrops.Syn(SynCase{First: t0, SYNs: offsets(t0, 0), RST: t0.Add(40 * ms), Retries: 6}); !slices.Equal(w.Errors, []string{model.ETIMEDOUT}) {
		t.Errorf("closed-port-drops model: %v, want ETIMEDOUT", w.Errors)
	}
}

// TestSynWire reads a connect attempt out of frames: SYNs, the RST, ARP.
func TestSynWire(t *testing.T) {
	t0 := time.Unix(1796322000, 0)
	cl, sv := [4]byte{192, 168, 77, 1}, [4]byte{192, 168, 77, 2}
	frames := []pcapRecord{
		{At: t0, Data: arpBytes(true, cl, sv)},
		{At: t0.Add(sec), Data: arpBytes(true, cl, sv)},
		{At: t0.Add(1100 * ms), Data: arpBytes(false, sv, cl)},
		{At: t0.Add(1200 * ms), Data: tcpBytes(cl, 40000, sv, EchoPort, tcpSYN, 100, 0)},
		{At: t0.Add(1240 * ms), Data: tcpBytes(sv, EchoPort, cl, 40000, tcpRST|tcpACK, 0, 101)},
	}
	w := analyseSynWire(frames, endpoint{netipAddr(sv), EchoPort}, t0.Add(-ms))
	if len(w.SYNs) != 1 || w.RST != t0.Add(1240*ms) || len(w.Requests) != 2 || len(w.Replies) != 1 || w.First() != t0 || w.Client.Port != 40000 {
		t.Fatalf("wire %+v", w)
	}
	if runs := w.resolutions(sec, 3); len(runs) != 0 {
		t.Errorf("an answered resolution counted as failed: %v", runs)
	}
	frames[2] = pcapRecord{At: t0.Add(2 * sec), Data: arpBytes(true, cl, sv)}
	w = analyseSynWire(frames, endpoint{netipAddr(sv), EchoPort}, t0.Add(-ms))
	if runs := w.resolutions(sec, 3); len(runs) != 1 || len(runs[0]) != 3 {
		t.Errorf("unanswered resolution: %v, want one run of 3", runs)
	}
	// A fourth request starts the next resolution (a SYN retransmission
	// found the entry FAILED), however soon.
	frames = append(frames, pcapRecord{At: t0.Add(3200 * ms), Data: arpBytes(true, cl, sv)})
	w = analyseSynWire(frames, endpoint{netipAddr(sv), EchoPort}, t0.Add(-ms))
	if runs := w.resolutions(sec, 3); len(runs) != 2 || len(runs[0]) != 3 || len(runs[1]) != 1 {
		t.Errorf("two resolutions: %v", runs)
	}
}

// TestConnectDeadExpectation builds a connect-dead evidence and judges it:
// the client's report against the window of the kernel's end, bracketed by
// its TCP_INFO.
func TestConnectDeadExpectation(t *testing.T) {
	s, _ := Lookup("connect-dead")
	t0 := time.Unix(1796322000, 0)
	dir := t.TempDir()
	cl, sv := [4]byte{192, 168, 77, 1}, [4]byte{192, 168, 77, 2}
	var frames []pcapRecord
	for _, d := range []time.Duration{0, 1010 * ms, 3030 * ms} {
		frames = append(frames, pcapRecord{At: t0.Add(d), Data: tcpBytes(cl, 40000, sv, EchoPort, tcpSYN, 100, 0)})
	}
	if err := writeFramesPcap(dir+"/"+wireFile, frames); err != nil {
		t.Fatal(err)
	}
	info := func(at time.Duration, state string, n int) GuestEvent {
		return GuestEvent{Event: echo.Event{Ev: "tcp_info", Reason: "connecting", TCPInfo: &echo.TCPInfo{State: state, Retransmits: uint8(n), RTOus: 1e6 << n}}, At: t0.Add(at), Uncert: ms}
	}
	ev := &Evidence{Scenario: "connect-dead", FaultStart: t0.Add(-2 * sec), FaultEnd: t0.Add(-10 * ms), FaultAt: t0.Add(-5 * ms), FaultUncert: 5 * ms,
		WireFile: dir + "/" + wireFile, Opt: Options{Target: "off"},
		Sysctls: map[string]map[string]string{"client": {"net.ipv4.tcp_syn_retries": "2"}},
		Client: []GuestEvent{
			{Event: echo.Event{Ev: "connecting", Peer: "192.168.77.2:9998"}, At: t0.Add(-10 * ms), Uncert: ms},
			info(5*ms, "SYN_SENT", 0), info(1015*ms, "SYN_SENT", 1), info(3035*ms, "SYN_SENT", 2),
			info(7100*ms, "SYN_SENT", 2), info(7110*ms, "CLOSE", 2),
			{Event: echo.Event{Ev: "error", Op: "connect", Errno: "ETIMEDOUT"}, At: t0.Add(7130 * ms), Uncert: ms},
		}}
	d := Judge(s, ev, Kernel)
	if d.Verdict != model.Expected || d.Observation.Error != model.ETIMEDOUT {
		t.Fatalf("verdict %v: %s", d.Verdict, d.Why)
	}
	if k := d.Judgement.Kernel; k == nil || k.Lo != t0.Add(7099*ms) || k.Hi != t0.Add(7111*ms) {
		t.Errorf("kernel end %+v, want the last SYN_SENT and first CLOSE samples", d.Judgement.Kernel)
	}
	// A connect that failed a second too early is a finding.
	early := *ev
	early.Client = append([]GuestEvent(nil), ev.Client...)
	early.Client[4], early.Client[5] = info(6000*ms, "SYN_SENT", 2), info(6010*ms, "CLOSE", 2)
	early.Client[6].At = t0.Add(6020 * ms)
	if d := Judge(s, &early, Kernel); d.Verdict != model.Unexpected {
		t.Errorf("connect failed at 6 s: %v %s", d.Verdict, d.Why)
	}
	// Without tcp_syn_retries read back there is no prediction.
	none := *ev
	none.Sysctls = nil
	if d := Judge(s, &none, Kernel); d.Verdict != model.Unknown {
		t.Errorf("no sysctls: %v", d.Verdict)
	}
}

// TestConnectDeadOptions: --target and --neigh are connect-dead's.
func TestConnectDeadOptions(t *testing.T) {
	po, _ := Lookup("power-off")
	if err := CheckOwn(po, Options{Target: "off"}); err == nil || !strings.Contains(err.Error(), "connect-dead") {
		t.Errorf("--target with power-off: %v", err)
	}
	cd, _ := Lookup("connect-dead")
	if err := CheckOwn(cd, Options{Target: "no-listener", Neigh: "cold"}); err != nil {
		t.Error(err)
	}
	for _, o := range []Options{{Target: "down"}, {Neigh: "hot"}} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", o)
		}
	}
	if err := cd.Check(Options{Idle: true}); err == nil {
		t.Error("connect-dead accepted --idle")
	}
	hs, _ := Lookup("hang-server")
	if err := hs.Check(Options{Client: ClientClassic}); err == nil {
		t.Error("hang-server accepted the classic client")
	}
	o := Options{}
	hs.Defaults(&o)
	if o.Interval != 20*ms || !slices.Contains(hs.ClientFlags(false), "--flood") {
		t.Errorf("hang-server defaults %+v, flags %v", o, hs.ClientFlags(false))
	}
}

func netipAddr(a [4]byte) netip.Addr { return netip.AddrFrom4(a) }

// arpBytes builds an ARP request (broadcast) or reply frame.
func arpBytes(request bool, sender, target [4]byte) []byte {
	d := make([]byte, 42)
	if request {
		copy(d[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	}
	binary.BigEndian.PutUint16(d[12:14], 0x0806)
	a := d[14:]
	binary.BigEndian.PutUint16(a[0:2], 1)
	binary.BigEndian.PutUint16(a[2:4], 0x0800)
	a[4], a[5] = 6, 4
	op := uint16(2)
	if request {
		op = 1
	}
	binary.BigEndian.PutUint16(a[6:8], op)
	copy(a[14:18], sender[:])
	copy(a[24:28], target[:])
	return d
}

// tcpBytes builds an IPv4 TCP segment frame without payload.
func tcpBytes(src [4]byte, sp uint16, dst [4]byte, dp uint16, flags uint8, seq, ack uint32) []byte {
	d := make([]byte, 14+20+20)
	binary.BigEndian.PutUint16(d[12:14], 0x0800)
	ip := d[14:]
	ip[0], ip[9] = 0x45, 6
	binary.BigEndian.PutUint16(ip[2:4], 40)
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:2], sp)
	binary.BigEndian.PutUint16(tcp[2:4], dp)
	binary.BigEndian.PutUint32(tcp[4:8], seq)
	binary.BigEndian.PutUint32(tcp[8:12], ack)
	tcp[12], tcp[13] = 5<<4, flags
	binary.BigEndian.PutUint16(tcp[14:16], 64240)
	return d
}
