package scenario

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/lab/model"
)

// synthCut is a partition made up along the kernel's rules: the client
// writes a line every second; at +0.5 s after the cut it writes one the cut
// swallows, sends a tail-loss probe one RTO later, then RTO retransmissions
// doubling from twice the base RTO, each timer late by late. The link heals
// down after the cut. The first expiry at or past retrans_stamp + the
// tcp_retries2 bound aborts; a retransmission after the heal is ACKed
// turnaround later and the client reads the echo 5 ms after that.
type synthCut struct {
	down, base, late, turnaround time.Duration
	retries2                     int
	// lostAfterHeal makes the first retransmission after the heal go
	// unanswered (as if it had not crossed): the next one is ACKed.
	lostAfterHeal bool
	// survive forces the client to survive (a read after the heal) even
	// where the rules say it aborts.
	survive bool
}

const (
	clientSeq = 1000
	serverSeq = 5000
)

func (c synthCut) evidence() *Evidence {
	f := time.Unix(1795614000, 0)
	at := func(d time.Duration) time.Time { return f.Add(d) }
	ev := &Evidence{Scenario: "partition", Opt: Options{Down: c.down, Interval: time.Second},
		Sysctls:    map[string]map[string]string{"client": {"net.ipv4.tcp_retries2": strconv.Itoa(c.retries2)}},
		FaultStart: f, FaultAt: f, FaultEnd: at(c.down), FaultUncert: 4 * ms,
		Healed: at(c.down), HealUncert: 4 * ms, Started: at(-5 * time.Second)}
	ev.Client = append(ev.Client, GuestEvent{Event: echo.Event{Ev: "connect", Local: "192.168.77.1:40000", Peer: "192.168.77.2:9998",
		Sockopts: &echo.Sockopts{}}, At: at(-4 * time.Second)})
	ev.ServerSocks = append(ev.ServerSocks, GuestEvent{Event: echo.Event{Ev: "sock", Local: "192.168.77.2:9998", Peer: "192.168.77.1:40000",
		TCPInfo: &echo.TCPInfo{State: "ESTABLISHED"}}, At: at(-4 * time.Second)})
	info := func(d time.Duration, state string, retrans int, rto time.Duration, unacked uint32) GuestEvent {
		return GuestEvent{Event: echo.Event{Ev: "tcp_info", TCPInfo: &echo.TCPInfo{State: state, Retransmits: uint8(retrans),
			Backoff: uint8(retrans), RTOus: uint32(rto / time.Microsecond), Unacked: unacked}}, At: at(d), Uncert: ms}
	}
	seq := uint32(clientSeq)
	var segs []Segment
	// Lines before the cut, each echoed and ACKed at once.
	for i := -3; i <= -1; i++ {
		w := time.Duration(i)*time.Second + 500*ms
		segs = append(segs, Segment{At: at(w), Out: true, Seq: seq, Ack: serverSeq, Len: 7, Flags: tcpACK},
			Segment{At: at(w + 8*ms), Seq: serverSeq, Ack: seq + 7, Len: 7, Flags: tcpACK})
		ev.Client = append(ev.Client, GuestEvent{Event: echo.Event{Ev: "write"}, At: at(w)}, GuestEvent{Event: echo.Event{Ev: "read"}, At: at(w + 10*ms)})
		seq += 7
	}
	ev.Client = append(ev.Client, info(-100*ms, "ESTABLISHED", 0, c.base, 0))
	sent := at(500 * ms)
	segs = append(segs, Segment{At: sent, Out: true, Seq: seq, Ack: serverSeq, Len: 7, Flags: tcpACK})
	ev.Client = append(ev.Client, GuestEvent{Event: echo.Event{Ev: "write"}, At: sent}, info(510*ms, "ESTABLISHED", 0, c.base, 1))
	tlp := sent.Add(c.base + c.late)
	segs = append(segs, Segment{At: tlp, Out: true, Seq: seq, Ack: serverSeq, Len: 7, Flags: tcpACK})
	rs := tlp.Add(c.base + c.late)
	deadline := rs.Add(model.RetransmitTimeout(c.retries2, model.RTOMin, model.RTOMax))
	t, rto, n := rs, 2*c.base, 1
	heal := at(c.down)
	acked := false
	for {
		segs = append(segs, Segment{At: t, Out: true, Seq: seq, Ack: serverSeq, Len: 7, Flags: tcpACK})
		ev.Client = append(ev.Client, info(t.Sub(f)+10*ms, "ESTABLISHED", n, rto, 1))
		if t.After(heal) && (!c.lostAfterHeal || acked) {
			ack := t.Add(c.turnaround)
			segs = append(segs, Segment{At: ack, Seq: serverSeq, Ack: seq + 7, Len: 7, Flags: tcpACK})
			ev.Client = append(ev.Client, GuestEvent{Event: echo.Event{Ev: "read"}, At: ack.Add(5 * ms), Uncert: ms},
				info(ack.Sub(f)+20*ms, "ESTABLISHED", 0, c.base, 0))
			ev.Stopped = ack.Add(time.Second)
			ev.Exit = &Exit{Signal: "KILL", ByHostlab: true, At: ev.Stopped}
			break
		}
		if t.After(heal) {
			acked = true // the next one is answered
		}
		next := t.Add(rto + c.late)
		if !next.Before(deadline) && !c.survive {
			ev.Client = append(ev.Client, info(next.Sub(f)-20*ms, "ESTABLISHED", n, rto, 1),
				info(next.Sub(f)+30*ms, "CLOSE", 0, rto, 0),
				GuestEvent{Event: echo.Event{Ev: "error", Errno: "ETIMEDOUT"}, At: next.Add(40 * ms), Uncert: ms})
			ev.Exit = &Exit{Status: 13, At: next.Add(60 * ms)}
			break
		}
		t, n = next, n+1
		rto = min(2*rto, model.RTOMax)
	}
	ev.Wire = &Wire{Segments: segs}
	return ev
}

func TestPartitionSurvivedOnSyntheticEvidence(t *testing.T) {
	s, _ := Lookup("partition")
	ev := synthCut{down: 3 * time.Second, base: 200 * ms, late: 20 * ms, turnaround: 8 * ms, retries2: 15}.evidence()
	d := Judge(s, ev, Kernel)
	t.Logf("%s: %s", d.Verdict, d.Why)
	if d.Verdict != model.Expected || d.Observation.Error != model.Survived {
		t.Fatalf("verdict %v, observed %q: want expected SURVIVED: %s", d.Verdict, d.Observation.Error, d.Why)
	}
	p := d.Judgement.Partition
	if p == nil || p.Predicted != "survived" || p.DeliveredAfterHealS == nil || *p.DeliveredAfterHealS <= 0 || p.RetransInCut == 0 || p.ProbesInCut != 1 {
		t.Fatalf("report %+v: want survived, delivered after the heal, the probe and the retransmissions in the cut", p)
	}
	if d.Judgement.Kernel == nil || !strings.Contains(d.Why, "had its queued data acknowledged") {
		t.Fatalf("the window must be checked at the server's ACK on the wire: %s", d.Why)
	}
	if !strings.Contains(d.Why, "stayed ESTABLISHED") {
		t.Errorf("no server check: %s", d.Why)
	}
	// The queued data delivered as the link heals is a wrong model.
	if w := Judge(s, ev, WrongHealImmediate); w.Verdict != model.Unexpected {
		t.Errorf("delivery at the heal: %v (%s), want unexpected", w.Verdict, w.Why)
	}
}

func TestPartitionDeliveryOneRTOLateIsUnexpected(t *testing.T) {
	s, _ := Lookup("partition")
	ev := synthCut{down: 3 * time.Second, base: 200 * ms, late: 20 * ms, turnaround: 8 * ms, retries2: 15, lostAfterHeal: true}.evidence()
	d := Judge(s, ev, Kernel)
	if d.Verdict != model.Unexpected || !strings.Contains(d.Why, "too late") {
		t.Fatalf("verdict %v: want unexpected, delivered a whole RTO after the first expiry past the heal: %s", d.Verdict, d.Why)
	}
}

func TestPartitionAbortInTheCutOnSyntheticEvidence(t *testing.T) {
	s, _ := Lookup("partition")
	ev := synthCut{down: 20 * time.Second, base: 200 * ms, late: 20 * ms, turnaround: 8 * ms, retries2: 3}.evidence()
	ev.Wire.Segments = append(ev.Wire.Segments, // The server's FIN after the heal draws the client kernel's RST.
		Segment{At: ev.Healed.Add(500 * ms), Seq: serverSeq, Ack: clientSeq + 21, Flags: tcpFIN | tcpACK},
		Segment{At: ev.Healed.Add(501 * ms), Out: true, Seq: clientSeq + 21, Flags: tcpRST})
	d := Judge(s, ev, Kernel)
	t.Logf("%s: %s", d.Verdict, d.Why)
	if d.Verdict != model.Expected || d.Observation.Error != model.ETIMEDOUT || d.Judgement.Partition.Predicted != "aborted" {
		t.Fatalf("verdict %v, observed %q, predicted %q: want expected ETIMEDOUT, aborted: %s", d.Verdict, d.Observation.Error, d.Judgement.Partition.Predicted, d.Why)
	}
	if d.Detect > 20*time.Second || !strings.Contains(d.Why, "drew the client kernel's RST") {
		t.Fatalf("the abort must come inside the cut (%v) and the server's FIN must draw the RST: %s", d.Detect, d.Why)
	}
	// A client that survives where the bound ends it in the cut is a finding.
	ev = synthCut{down: 20 * time.Second, base: 200 * ms, late: 20 * ms, turnaround: 8 * ms, retries2: 3, survive: true}.evidence()
	if d := Judge(s, ev, Kernel); d.Verdict != model.Unexpected {
		t.Fatalf("survived past the bound: %v (%s), want unexpected", d.Verdict, d.Why)
	}
}

func TestPartitionServerMustStayEstablished(t *testing.T) {
	s, _ := Lookup("partition")
	ev := synthCut{down: 3 * time.Second, base: 200 * ms, late: 20 * ms, turnaround: 8 * ms, retries2: 15}.evidence()
	ev.ServerSocks = append(ev.ServerSocks, GuestEvent{Event: echo.Event{Ev: "sock_gone", Local: "192.168.77.2:9998", Peer: "192.168.77.1:40000"}, At: ev.FaultAt.Add(time.Second)})
	if d := Judge(s, ev, Kernel); d.Verdict != model.Unexpected || !strings.Contains(d.Why, "during the cut") {
		t.Fatalf("server socket gone in the cut: %v (%s), want unexpected", d.Verdict, d.Why)
	}
}

func TestKernelHealTooClose(t *testing.T) {
	rs := time.Unix(1795614000, 0)
	// tcp_retries2=3: bound 3 s. Rungs at 0, 0.4, 1.2 s; the next expiry
	// (2.8 s) retransmits; the one after (6.0 s) aborts.
	l := ladderAt(rs, 200*ms, 0, 400*ms, 1200*ms)
	l.Rungs[0].Armed, l.Rungs[1].Armed, l.Rungs[2].Armed = 400*ms, 800*ms, 1600*ms
	c := HealCase{AbortCase: AbortCase{Ladder: l, Retries2: 3, HZ: 250}, Turnaround: 10 * ms, TurnaroundFrom: "test"}
	// Healed at 2 s: the 2.8 s retransmission crosses.
	c.HealLo, c.HealHi = rs.Add(2*time.Second), rs.Add(2010*ms)
	if out, err := kernelHeal(c); err != nil || !out.Survives || out.Rung != 4 || !out.Delivery.Lo.Equal(rs.Add(2800*ms)) {
		t.Fatalf("heal at 2 s: %+v, %v; want survival by RTO retransmission 4 at 2.8 s", out, err)
	}
	// Healed at 4 s: the 2.8 s retransmission is lost, 6.0 s aborts.
	c.HealLo, c.HealHi = rs.Add(4*time.Second), rs.Add(4010*ms)
	if out, err := kernelHeal(c); err != nil || out.Survives {
		t.Fatalf("heal at 4 s: %+v, %v; want the abort", out, err)
	}
	// Healed right at the 2.8 s expiry: it may or may not cross, and if not
	// the next expiry aborts: too close to call.
	c.HealLo, c.HealHi = rs.Add(2790*ms), rs.Add(2810*ms)
	if _, err := kernelHeal(c); !errors.Is(err, errTooClose) {
		t.Fatalf("heal at the expiry: %v, want too close to call", err)
	}
}
