package scenario_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/labtest"
	"github.com/hostlab/hostlab/lab/scenario"
	"github.com/hostlab/hostlab/lab/timeline"
)

// faultBound is the bound on a power cut's fault instant the design
// guarantees: the pause window's half-width.
const faultBound = 10 * time.Millisecond

// inFlight is how much later than the pause window's end the client's QEMU
// may still record a frame the server's QEMU sent before it: the loopback
// UDP hop and the client QEMU's main loop.
const inFlight = 5 * time.Millisecond

// TestFaultPinnedOnVMs runs the faults whose instant hostlab pins on real
// guests. Power-off: result.json's bound on the fault instant is at most
// 10 ms, and the client's capture of the lab link holds no frame from the
// server after the pause window. Kill-server: the kill is pinned by the
// server guest's own clock stamps, which the guest's shell must produce.
func TestFaultPinnedOnVMs(t *testing.T) {
	labtest.Require(t)
	l := labtest.Up(t, labtest.Config(t, "t-faultpin"))
	run := func(t *testing.T, name string, opt scenario.Options) (*scenario.Result, pinnedResult, []timeline.Event) {
		t.Helper()
		s, err := scenario.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		res, err := scenario.Execute(ctx, s, opt, scenario.Config{Lab: l, Out: t.TempDir(), Log: labtest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Log("\n" + res.Summary())
		var rj pinnedResult
		b, err := os.ReadFile(filepath.Join(res.RunDir, "result.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &rj); err != nil {
			t.Fatalf("result.json: %v", err)
		}
		if rj.FaultUncertS == nil {
			t.Fatalf("result.json has no fault_uncert_s")
		}
		t.Logf("fault instant ± %.3f ms (%s); detection ± %.3f ms", *rj.FaultUncertS*1e3, rj.FaultPin, rj.Observed.DetectUncertS*1e3)
		if rj.Observed.Error == "" || rj.Observed.DetectUncertS < *rj.FaultUncertS {
			t.Errorf("observed %q ± %.6f s: want an error whose bound includes the fault's ± %.6f s", rj.Observed.Error, rj.Observed.DetectUncertS, *rj.FaultUncertS)
		}
		evs, err := timeline.Read(filepath.Join(res.RunDir, timeline.FileName))
		if err != nil {
			t.Fatal(err)
		}
		return res, rj, evs
	}

	t.Run("power-off", func(t *testing.T) {
		res, rj, evs := run(t, "power-off", scenario.Options{Sysctls: []string{"client:net.ipv4.tcp_retries2=3"}})
		if got := time.Duration(*rj.FaultUncertS * 1e9); got > faultBound {
			t.Errorf("fault instant ± %v, want at most ± %v", got, faultBound)
		}
		srv, err := l.State.Guest(lab.RoleServer)
		if err != nil {
			t.Fatal(err)
		}
		mac, err := net.ParseMAC(srv.Links[0].MAC)
		if err != nil {
			t.Fatal(err)
		}
		checkSilentAfterPause(t, evs, filepath.Join(res.RunDir, "client.lab0.pcap"), mac)
	})

	t.Run("kill-server", func(t *testing.T) {
		_, rj, evs := run(t, "kill-server", scenario.Options{})
		if !strings.Contains(rj.FaultPin, "kill") {
			t.Fatalf("fault_pin %q: the kill was not pinned by the server's clock stamps", rj.FaultPin)
		}
		if w := timeline.Windows(evs); len(w) == 1 {
			t.Logf("the SSH command that sent the kill took %v", time.Duration(w[0].EndNS-w[0].StartNS))
		}
	})
}

// pinnedResult is the part of result.json these tests read.
type pinnedResult struct {
	FaultUncertS *float64 `json:"fault_uncert_s"`
	FaultPin     string   `json:"fault_pin"`
	Observed     struct {
		Error         string  `json:"error"`
		DetectUncertS float64 `json:"detect_uncert_s"`
	} `json:"observed"`
}

// checkSilentAfterPause reads the client's capture and fails t if a frame
// from the server's MAC was recorded after the pause window's end (plus
// inFlight) and before the client reported its error.
//
// QEMU stamps captured frames with its virtual clock plus the wall-clock
// second it started at, so the capture is placed on the host axis first:
// each frame from the server that the client's program then read (the
// SYN-ACK before "connect", each echo before its "read") was recorded no
// later than that event, so capture time minus event time is at most the
// capture's offset; the largest such difference, L, bounds it from below,
// and capture time minus L bounds a frame's host time from above.
func checkSilentAfterPause(t *testing.T, evs []timeline.Event, pcap string, server net.HardwareAddr) {
	t.Helper()
	var pauseEnd, clientEnd time.Time
	var gotFirst []timeline.Event // the client's connect and reads before the pause
	for _, e := range evs {
		switch {
		case e.Src == timeline.SrcHost && e.Ev == "paused":
			var d struct {
				ToNS int64 `json:"to_ns"`
			}
			if err := e.DecodeData(&d); err != nil {
				t.Fatalf("paused event: %v", err)
			}
			pauseEnd = time.Unix(0, d.ToNS)
		case e.Src == timeline.SrcClient && (e.Ev == "connect" || e.Ev == "read") && pauseEnd.IsZero():
			gotFirst = append(gotFirst, e)
		case e.Src == timeline.SrcClient && (e.Ev == "error" || e.Ev == "eof") && !pauseEnd.IsZero() && clientEnd.IsZero():
			clientEnd = e.Host()
		}
	}
	if pauseEnd.IsZero() || clientEnd.IsZero() {
		t.Fatalf("timeline lacks the paused event (%v) or the client's error after it (%v)", pauseEnd, clientEnd)
	}
	frames, err := readFrames(pcap)
	if err != nil {
		t.Fatal(err)
	}
	// The server's frames the client read, in order: the SYN-ACK of the
	// run's connection (the capture's last), then every segment with data
	// (the echoes; the server retransmits nothing on this quiet link).
	var fromServer, read []frame
	for _, f := range frames {
		if !bytes.Equal(f.src, server) {
			continue
		}
		fromServer = append(fromServer, f)
		switch {
		case f.tcp && f.synAck:
			read = append(read[:0], f)
		case f.tcp && f.payload > 0:
			read = append(read, f)
		}
	}
	if len(gotFirst) < 2 || len(read) < len(gotFirst) || !read[0].synAck {
		t.Fatalf("cannot place the capture on the host axis: %d client events before the pause, %d server frames read (first a SYN-ACK: %v)",
			len(gotFirst), len(read), len(read) > 0 && read[0].synAck)
	}
	lo, hi := time.Duration(1<<62), time.Duration(-1<<62)
	for i, e := range gotFirst {
		d := read[i].at.Sub(e.Host().Add(e.Uncert()))
		lo, hi = min(lo, d), max(hi, d)
	}
	// The differences scatter by the delivery latency (frame to program):
	// milliseconds, tens under load. Mispaired, they would differ by about
	// the client's interval (1 s).
	if hi-lo > 500*time.Millisecond {
		t.Fatalf("capture offsets spread over %v: frames and client events do not pair up", hi-lo)
	}
	t.Logf("capture placed on the host axis: offset >= %v (pairs spread over %v)", hi, hi-lo)
	late := 0
	for _, f := range fromServer {
		at := f.at.Add(-hi) // at or after the frame's host time
		if at.After(clientEnd) {
			break
		}
		switch {
		case at.After(pauseEnd.Add(inFlight)):
			late++
			t.Errorf("frame from the server at most %v after the pause window's end (%d bytes, tcp %v, payload %d)", at.Sub(pauseEnd), f.size, f.tcp, f.payload)
		case at.After(pauseEnd):
			t.Logf("frame from the server at most %v after the pause window's end: within the in-flight margin %v", at.Sub(pauseEnd), inFlight)
		}
	}
	if late == 0 {
		t.Logf("no frame from the server after the pause window's end (%d frames from it in the capture)", len(fromServer))
	}
}

// frame is one Ethernet frame of a capture, decoded as far as the check
// needs.
type frame struct {
	at      time.Time
	size    int
	src     net.HardwareAddr
	tcp     bool
	synAck  bool
	payload int
}

// readFrames reads a classic pcap file of Ethernet frames (as QEMU's
// filter-dump writes it); a record cut short at the end is ignored.
func readFrames(path string) ([]frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var gh [24]byte
	if _, err := io.ReadFull(f, gh[:]); err != nil {
		return nil, fmt.Errorf("pcap %s: header: %w", path, err)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	nano := false
	switch binary.LittleEndian.Uint32(gh[:4]) {
	case 0xa1b2c3d4:
	case 0xa1b23c4d:
		nano = true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("pcap %s: not a pcap file", path)
	}
	var out []frame
	for {
		var rh [16]byte
		if _, err := io.ReadFull(f, rh[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return out, nil
			}
			return out, err
		}
		frac := int64(bo.Uint32(rh[4:8]))
		if !nano {
			frac *= 1000
		}
		buf := make([]byte, bo.Uint32(rh[8:12]))
		if _, err := io.ReadFull(f, buf); err != nil {
			return out, nil
		}
		if len(buf) < 14 {
			continue
		}
		fr := frame{at: time.Unix(int64(bo.Uint32(rh[0:4])), frac), size: len(buf), src: net.HardwareAddr(buf[6:12])}
		if ip := buf[14:]; buf[12] == 0x08 && buf[13] == 0x00 && len(ip) >= 20 && ip[0]>>4 == 4 && ip[9] == 6 {
			ihl := int(ip[0]&0x0f) * 4
			total := int(binary.BigEndian.Uint16(ip[2:4]))
			if tcp := ip[min(ihl, len(ip)):]; len(tcp) >= 20 && total <= len(ip) {
				fr.tcp = true
				fr.synAck = tcp[13]&0x12 == 0x12
				fr.payload = total - ihl - int(tcp[12]>>4)*4
			}
		}
		out = append(out, fr)
	}
}
