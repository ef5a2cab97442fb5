package scenario

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/labtest"
	"github.com/hostlab/hostlab/lab/timeline"
)

// TestCaptureOnVMs runs power-off twice in one lab and reads each run
// folder's captures back: exactly the run's frames, from its start to its
// end — the server's last frames before the fault, its frames after the
// heal (a new QEMU process, a new capture file), and none of the other
// run's.
func TestCaptureOnVMs(t *testing.T) {
	labtest.Require(t)
	l := labtest.Up(t, labtest.Config(t, "t-capture"))
	s, err := Lookup("power-off")
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Sysctls: []string{"client:net.ipv4.tcp_retries2=3"}}
	out := t.TempDir()
	var runs []*Result
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, err := Execute(ctx, s, opt, Config{Lab: l, Out: out, Log: labtest.Logger(t)})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Log("\n" + res.Summary())
		runs = append(runs, res)
	}
	cl, _ := l.State.Guest(lab.RoleClient)
	srv, _ := l.State.Guest(lab.RoleServer)
	// The client's QEMU ran throughout: its capture clock's lag, measured
	// on the live file, holds for both runs.
	clientLag := liveLag(t, cl.Links[0].Pcap)
	serverLag := liveLag(t, srv.Links[0].Pcap) // The server's QEMU since the second heal.
	t.Logf("capture clocks behind the host's: client %v, server (last QEMU) %v", clientLag, serverLag)

	// Each heal's flush measured the lag of the server capture it closed:
	// the QEMU that ran from the run before's heal to this run's fault.
	heals := make([]time.Time, len(runs))
	preLags := make([]time.Duration, len(runs))
	for i, res := range runs {
		heals[i], preLags[i] = healEvent(t, res)
	}
	var prev []pcapRecord
	for i, res := range runs {
		postLag := serverLag
		if i+1 < len(runs) {
			postLag = preLags[i+1]
		}
		client := runFrames(t, res, "client.lab0.pcap")
		server := runFrames(t, res, "server.lab0.pcap")
		t.Logf("run %d: client %d frames, server %d frames; fault %s, heal %s after the start; server capture lag before %v, after %v",
			i+1, len(client), len(server), res.FaultAt.Sub(res.Started), heals[i].Sub(res.Started), preLags[i], postLag)

		// The client: nothing older than the run, nothing of the other run,
		// and the retransmissions after the fault.
		for _, rec := range client {
			if at := rec.At.Add(clientLag); at.Before(res.Started.Add(-20 * time.Millisecond)) {
				t.Fatalf("run %d: a client frame at %v (host axis), %v before the run started", i+1, at, res.Started.Sub(at))
			}
		}
		if len(prev) > 0 && !client[0].At.After(prev[len(prev)-1].At) {
			t.Fatalf("run %d: the client's first frame (%v) is not after the previous run's last (%v)", i+1, client[0].At, prev[len(prev)-1].At)
		}
		prev = client
		n := retransmissions(client, res.FaultAt.Add(-clientLag))
		if n < 2 {
			t.Fatalf("run %d: %d retransmissions after the fault in the client's capture, want at least 2 (TCP_INFO: %d)", i+1, n, res.Retransmits)
		}
		t.Logf("run %d: %d retransmissions after the fault on the wire, %d in TCP_INFO", i+1, n, res.Retransmits)
		checkLag(t, res, client, clientLag)

		// The server: from the run's start, its last frames before the
		// fault, then frames after the heal.
		if first := server[0].At.Add(preLags[i]); first.Before(res.Started.Add(-20 * time.Millisecond)) {
			t.Fatalf("run %d: a server frame %v before the run started", i+1, res.Started.Sub(first))
		}
		var lastEcho time.Time
		after := 0
		for _, rec := range server {
			if seg, ok := parseTCP(rec.Data); ok && (seg.src == EchoPort || seg.dst == EchoPort) && rec.At.Before(res.FaultAt) {
				lastEcho = rec.At.Add(preLags[i])
			}
			if !rec.At.Add(postLag).Before(heals[i].Add(-20 * time.Millisecond)) {
				after++
			}
		}
		if lastEcho.IsZero() {
			t.Fatalf("run %d: no TCP frame on port %d before the fault in the server's capture", i+1, EchoPort)
		}
		if gap := res.FaultAt.Sub(lastEcho); gap > 2500*time.Millisecond {
			t.Fatalf("run %d: the server's last echo frame came %v before the fault: not its last frames", i+1, gap)
		}
		if after == 0 {
			t.Fatalf("run %d: no frame after the heal in the server's capture", i+1)
		}
		t.Logf("run %d: the server's last echo frame %v before the fault; %d frames after the heal", i+1, res.FaultAt.Sub(lastEcho), after)
	}

	// crash-reboot with a power cycle starts the server's QEMU inside the
	// fault: the server's capture holds its echo frames before the fault and
	// the rebooted host's frames after — its RST when the client, retrying
	// with the default tcp_retries2 (set again: the runs above left 3 in the
	// client guest), was reset.
	cr, err := Lookup("crash-reboot")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Execute(ctx, cr, Options{Reboot: "power-cycle", Down: 2 * time.Second, Sysctls: []string{"client:net.ipv4.tcp_retries2=15"}}, Config{Lab: l, Out: out, Log: labtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + res.Summary())
	echoBefore, after, rstAfter := 0, 0, 0
	for _, rec := range runFrames(t, res, "server.lab0.pcap") {
		if !rec.At.Before(res.FaultAt) {
			after++ // The old QEMU's stamps are all before the fault.
		}
		seg, ok := parseTCP(rec.Data)
		switch {
		case !ok || seg.src != EchoPort && seg.dst != EchoPort:
		case rec.At.Before(res.FaultAt):
			echoBefore++
		case seg.src == EchoPort && seg.flags&tcpRST != 0:
			rstAfter++
		}
	}
	if echoBefore == 0 || after == 0 || res.Observed.Error == "ECONNRESET" && rstAfter == 0 {
		t.Fatalf("power cycle (client saw %s): server capture has %d echo frames before the fault, %d frames and %d RSTs after the restart",
			res.Observed.Error, echoBefore, after, rstAfter)
	}
	t.Logf("power cycle (client saw %s): server capture has %d echo frames before the fault, %d frames and %d RSTs after the restart",
		res.Observed.Error, echoBefore, after, rstAfter)
}

// checkLag checks the measured capture clock lag against the client's own
// record: each line it wrote leaves in a segment that, moved onto the host's
// axis by the lag, is on the wire before the client's write event (stamped
// once write returned; a slow TCG guest may take a while) and at most 50 ms
// after it (QEMU's transmit and the clock fit's bounds). A lag off by a
// second or more fails.
func checkLag(t *testing.T, res *Result, client []pcapRecord, lag time.Duration) {
	t.Helper()
	evs, err := timeline.Read(filepath.Join(res.RunDir, timeline.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var early, late time.Duration
	n := 0
	for _, e := range evs {
		var d struct {
			Seq int `json:"seq"`
		}
		if e.Src != timeline.SrcClient || e.Ev != "write" || e.DecodeData(&d) != nil {
			continue
		}
		line := []byte(fmt.Sprintf("hostlab-echo %d\n", d.Seq))
		for _, rec := range client {
			if seg, ok := parseTCP(rec.Data); !ok || seg.dst != EchoPort || !bytes.Contains(rec.Data, line) {
				continue
			}
			off := rec.At.Add(lag).Sub(e.Host())
			early, late = min(early, off), max(late, off)
			n++
			break
		}
	}
	if n == 0 || early < -500*time.Millisecond || late > 50*time.Millisecond {
		t.Fatalf("capture clock lag %v: %d written lines on the wire %v..%v from the client's write events", lag, n, early, late)
	}
	t.Logf("capture clock lag %v: %d written lines on the wire %v..%v from the client's write events", lag, n, early, late)
}

// runFrames reads one capture of a run folder: a valid pcap of Ethernet
// frames with some in it.
func runFrames(t *testing.T, res *Result, name string) []pcapRecord {
	t.Helper()
	h, recs, err := readPcap(filepath.Join(res.RunDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if h.link != linkEthernet || len(recs) == 0 {
		t.Fatalf("%s: link type %d, %d frames", name, h.link, len(recs))
	}
	return recs
}

// liveLag is how far a live capture's stamps run behind the host's clock:
// the file's last write less its last record's stamp.
func liveLag(t *testing.T, path string) time.Duration {
	t.Helper()
	_, recs, err := readPcap(path)
	if err != nil || len(recs) == 0 {
		t.Fatalf("%s: %d records, %v", path, len(recs), err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime().Sub(recs[len(recs)-1].At)
}

// healEvent is the flush before the server's QEMU started again, and the
// lag of the capture it closed, from the run's timeline.
func healEvent(t *testing.T, res *Result) (time.Time, time.Duration) {
	t.Helper()
	evs, err := timeline.Read(filepath.Join(res.RunDir, timeline.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		var d struct {
			Why   string                 `json:"why"`
			Files map[string]captureStat `json:"files"`
		}
		if e.Src != timeline.SrcHost || e.Ev != "capture" || e.DecodeData(&d) != nil || d.Why != "before the server's QEMU starts" {
			continue
		}
		var lag time.Duration
		if ms := d.Files["server.lab0.pcap"].ClockLagMS; ms != nil {
			lag = time.Duration(*ms * 1e6)
		}
		return e.Host(), lag
	}
	t.Fatal("no capture flush before the server's QEMU started again in the timeline")
	return time.Time{}, 0
}

// tcpSeg is the part of a TCP segment the test looks at.
type tcpSeg struct {
	src, dst uint16
	seq      uint32
	flags    byte
	payload  int
}

// parseTCP decodes an Ethernet/IPv4/TCP frame.
func parseTCP(frame []byte) (tcpSeg, bool) {
	if len(frame) < 14+20+20 || frame[12] != 0x08 || frame[13] != 0x00 {
		return tcpSeg{}, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ip[0]>>4 != 4 || ip[9] != 6 || ihl < 20 || len(ip) < ihl+20 || total > len(ip) {
		return tcpSeg{}, false
	}
	tcp := ip[ihl:]
	off := int(tcp[12]>>4) * 4
	return tcpSeg{src: binary.BigEndian.Uint16(tcp[0:2]), dst: binary.BigEndian.Uint16(tcp[2:4]),
		seq: binary.BigEndian.Uint32(tcp[4:8]), flags: tcp[13], payload: total - ihl - off}, true
}

// retransmissions counts data segments to the echo port stamped after
// since that repeat a sequence number already sent.
func retransmissions(recs []pcapRecord, since time.Time) int {
	sent := map[uint32]bool{}
	n := 0
	for _, rec := range recs {
		seg, ok := parseTCP(rec.Data)
		if !ok || seg.dst != EchoPort || seg.payload <= 0 {
			continue
		}
		if sent[seg.seq] && rec.At.After(since) {
			n++
		}
		sent[seg.seq] = true
	}
	return n
}
