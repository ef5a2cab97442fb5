package scenario

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab"
)

// pcapFmt writes synthetic classic pcap files, as QEMU's filter-dump would.
type pcapFmt struct {
	order binary.ByteOrder
	nano  bool
	link  uint32
}

var (
	leMicro = pcapFmt{binary.LittleEndian, false, linkEthernet}
	beNano  = pcapFmt{binary.BigEndian, true, linkEthernet}
)

func (p pcapFmt) header() []byte {
	b := make([]byte, pcapHeaderLen)
	magic := uint32(0xa1b2c3d4)
	if p.nano {
		magic = 0xa1b23c4d
	}
	p.order.PutUint32(b[0:], magic)
	p.order.PutUint16(b[4:], 2)
	p.order.PutUint16(b[6:], 4)
	p.order.PutUint32(b[16:], 65536)
	p.order.PutUint32(b[20:], p.link)
	return b
}

func (p pcapFmt) record(at time.Time, frame []byte) []byte {
	b := make([]byte, pcapRecHeaderLen, pcapRecHeaderLen+len(frame))
	frac := uint32(at.Nanosecond())
	if !p.nano {
		frac /= 1000
	}
	p.order.PutUint32(b[0:], uint32(at.Unix()))
	p.order.PutUint32(b[4:], frac)
	p.order.PutUint32(b[8:], uint32(len(frame)))
	p.order.PutUint32(b[12:], uint32(len(frame)))
	return append(b, frame...)
}

// frame is a distinct Ethernet/IPv4/TCP frame: n in its payload.
func frame(n int) []byte {
	return ipv4Frame(6, []byte(fmt.Sprintf("frame %04d....................", n)))
}

// capTest is a capture source file and the instants its records carry.
type capTest struct {
	t   *testing.T
	src string
	t0  time.Time
}

func newCapTest(t *testing.T) *capTest {
	return &capTest{t: t, src: filepath.Join(t.TempDir(), "server.lab0.pcap"), t0: time.Unix(1795614000, 123456789)}
}

// at is the stamp of frame n.
func (ct *capTest) at(n int) time.Time { return ct.t0.Add(time.Duration(n) * 100 * time.Millisecond) }

// records are frames from..to-1 in format p.
func (ct *capTest) records(p pcapFmt, from, to int) []byte {
	var b []byte
	for n := from; n < to; n++ {
		b = append(b, p.record(ct.at(n), frame(n))...)
	}
	return b
}

// append adds bytes to the source, as QEMU does.
func (ct *capTest) append(b []byte) {
	ct.t.Helper()
	f, err := os.OpenFile(ct.src, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		ct.t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		ct.t.Fatal(err)
	}
	f.Close()
}

// touch sets the source's modification time to frame n's stamp plus lag,
// as if QEMU wrote frame n last and its clock ran lag behind the host's.
func (ct *capTest) touch(n int, lag time.Duration) {
	ct.t.Helper()
	at := ct.at(n).Truncate(time.Microsecond).Add(lag)
	if err := os.Chtimes(ct.src, at, at); err != nil {
		ct.t.Fatal(err)
	}
}

// restart truncates the source in place and writes b, as a new QEMU
// process opening it does (O_TRUNC: same inode).
func (ct *capTest) restart(b []byte) {
	ct.t.Helper()
	if err := os.WriteFile(ct.src, b, 0o644); err != nil {
		ct.t.Fatal(err)
	}
}

// wantFrames checks that the copy at path holds exactly frames ns, in format
// p, stamped as written — to the microsecond from frame microFrom on.
func wantFrames(t *testing.T, path string, p pcapFmt, microFrom int, ct *capTest, ns ...int) {
	t.Helper()
	h, recs, err := readPcap(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.order != p.order || h.nano != p.nano || h.link != p.link {
		t.Fatalf("%s: header %v nano=%v link %d, want %v nano=%v link %d", path, h.order, h.nano, h.link, p.order, p.nano, p.link)
	}
	if b, _ := os.ReadFile(path); bytes.Count(b, p.header()[:4]) != 1 {
		t.Fatalf("%s: the global header is not there exactly once", path)
	}
	var got []int
	for _, rec := range recs {
		var n int
		if _, err := fmt.Sscanf(string(rec.Data[34:]), "frame %04d", &n); err != nil {
			t.Fatalf("%s: unexpected frame % x", path, rec.Data)
		}
		got = append(got, n)
		want := ct.at(n)
		if n >= microFrom {
			want = want.Truncate(time.Microsecond)
		}
		if !rec.At.Equal(want) || !bytes.Equal(rec.Data, frame(n)) || rec.Len != len(frame(n)) {
			t.Fatalf("%s: frame %d stamped %v (want %v), %d bytes", path, n, rec.At, want, len(rec.Data))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(ns) {
		t.Fatalf("%s: frames %v, want %v", path, got, ns)
	}
}

// allNano compares every stamp to the nanosecond.
const allNano = 1 << 30

func flushOK(t *testing.T, c *capture) {
	t.Helper()
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
}

func TestCaptureIncrementalAndPartial(t *testing.T) {
	ct := newCapTest(t)
	ct.append(append(leMicro.header(), ct.records(leMicro, 0, 3)...)) // Earlier runs.
	dst := filepath.Join(t.TempDir(), "server.lab0.pcap")
	c := newCapture("server", 0, ct.src, dst)
	flushOK(t, c)
	wantFrames(t, dst, leMicro, 0, ct) // The header alone, once.
	rec5 := leMicro.record(ct.at(5), frame(5))
	ct.append(append(ct.records(leMicro, 3, 5), rec5[:7]...)) // 5 is still being written.
	flushOK(t, c)
	wantFrames(t, dst, leMicro, 0, ct, 3, 4)
	ct.append(rec5[7:20])
	flushOK(t, c)
	wantFrames(t, dst, leMicro, 0, ct, 3, 4)
	ct.append(append(rec5[20:], ct.records(leMicro, 6, 7)...))
	flushOK(t, c)
	flushOK(t, c)
	wantFrames(t, dst, leMicro, 0, ct, 3, 4, 5, 6)
	if c.records != 4 || c.files != 1 {
		t.Fatalf("records %d, source files %d; want 4, 1", c.records, c.files)
	}
	// The capture clock's lag: the last write's time less the last stamp.
	mtime := ct.at(6).Add(1500 * time.Millisecond)
	if err := os.Chtimes(ct.src, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	flushOK(t, c)
	if want := mtime.Sub(ct.at(6).Truncate(time.Microsecond)); len(c.spans) != 1 || c.spans[0].lag != want {
		t.Fatalf("spans %+v, want one with lag %v", c.spans, want)
	}
}

func TestCaptureStartsMidRecord(t *testing.T) {
	ct := newCapTest(t)
	rec2 := leMicro.record(ct.at(2), frame(2))
	ct.append(append(append(leMicro.header(), ct.records(leMicro, 0, 2)...), rec2[:10]...))
	dst := filepath.Join(t.TempDir(), "client.lab0.pcap")
	c := newCapture("client", 0, ct.src, dst)
	ct.append(rec2[10:])
	flushOK(t, c)
	wantFrames(t, dst, leMicro, 0, ct, 2)
}

// TestCaptureServerRestart is the power-off case: the server's frames up to
// the fault, a flush before its domain starts again, then a new QEMU process
// truncating the file — shorter than what was read, or already longer.
func TestCaptureServerRestart(t *testing.T) {
	for _, c := range []struct {
		name  string
		after int // frames the new QEMU wrote before the flush
	}{{"shorter", 1}, {"longer", 12}} {
		t.Run(c.name, func(t *testing.T) {
			ct := newCapTest(t)
			ct.append(append(leMicro.header(), ct.records(leMicro, 0, 2)...)) // An earlier run.
			dst := filepath.Join(t.TempDir(), "server.lab0.pcap")
			cp := newCapture("server", 0, ct.src, dst)
			ct.append(ct.records(leMicro, 2, 5)) // This run, up to the fault.
			ct.touch(4, 9*time.Second)           // The old QEMU's last write.
			flushOK(t, cp)                       // Before the domain starts.
			ct.restart(append(leMicro.header(), ct.records(leMicro, 10, 10+c.after)...))
			flushOK(t, cp)
			ct.append(ct.records(leMicro, 10+c.after, 11+c.after))
			ct.touch(10+c.after, 11*time.Second) // The new QEMU's.
			flushOK(t, cp)
			want := []int{2, 3, 4}
			for n := 10; n <= 10+c.after; n++ {
				want = append(want, n)
			}
			wantFrames(t, dst, leMicro, 0, ct, want...)
			if cp.files != 2 {
				t.Fatalf("source files %d, want 2", cp.files)
			}
			// Read back on the host's axis: each QEMU's lag on its frames.
			frames, err := cp.frames()
			if err != nil || len(frames) != len(want) {
				t.Fatalf("frames: %d, %v", len(frames), err)
			}
			for i, n := range want {
				lag := 9 * time.Second
				if n >= 10 {
					lag = 11 * time.Second
				}
				if at := ct.at(n).Truncate(time.Microsecond).Add(lag); !frames[i].At.Equal(at) {
					t.Fatalf("frame %d at %v, want %v", n, frames[i].At, at)
				}
			}
		})
	}
}

func TestCaptureReplacedFile(t *testing.T) {
	ct := newCapTest(t)
	ct.append(append(leMicro.header(), ct.records(leMicro, 0, 2)...))
	dst := filepath.Join(t.TempDir(), "server.lab0.pcap")
	c := newCapture("server", 0, ct.src, dst)
	ct.append(ct.records(leMicro, 2, 3))
	// Another inode, holding more than was read, with the same prefix.
	b, _ := os.ReadFile(ct.src)
	tmp := ct.src + ".new"
	if err := os.WriteFile(tmp, append(b, ct.records(leMicro, 3, 4)...), 0o644); err != nil {
		t.Fatal(err)
	}
	flushOK(t, c)
	if err := os.Rename(tmp, ct.src); err != nil {
		t.Fatal(err)
	}
	flushOK(t, c)
	wantFrames(t, dst, leMicro, 0, ct, 2, 0, 1, 2, 3)
}

// TestCaptureFormats: a new file in another byte order and resolution is
// converted to the copy's; one with another link type starts a second copy.
func TestCaptureFormats(t *testing.T) {
	ct := newCapTest(t)
	ct.append(beNano.header())
	dst := filepath.Join(t.TempDir(), "router.lab1.pcap")
	c := newCapture("router", 1, ct.src, dst)
	ct.append(ct.records(beNano, 0, 2))
	flushOK(t, c)
	wantFrames(t, dst, beNano, allNano, ct, 0, 1) // Nanoseconds kept.
	ct.restart(append(leMicro.header(), ct.records(leMicro, 2, 4)...))
	flushOK(t, c)
	wantFrames(t, dst, beNano, 2, ct, 0, 1, 2, 3)

	ct2 := newCapTest(t)
	ct2.append(append(leMicro.header(), ct2.records(leMicro, 0, 1)...))
	dst2 := filepath.Join(t.TempDir(), "client.lab0.pcap")
	c2 := newCapture("client", 0, ct2.src, dst2)
	ct2.append(ct2.records(leMicro, 1, 2))
	flushOK(t, c2)
	ct2.restart(append(beNano.header(), ct2.records(beNano, 2, 3)...))
	flushOK(t, c2)
	wantFrames(t, dst2, leMicro, 0, ct2, 1, 2) // Nanoseconds truncated.

	raw := pcapFmt{binary.LittleEndian, false, 101}
	ct2.restart(append(raw.header(), raw.record(ct2.at(3), frame(3))...))
	flushOK(t, c2)
	wantFrames(t, dst2, leMicro, 0, ct2, 1, 2)
	second := filepath.Join(filepath.Dir(dst2), "client.lab0.2.pcap")
	if h, recs, err := readPcap(second); err != nil || h.link != 101 || len(recs) != 1 {
		t.Fatalf("second copy: link %d, %d records, %v", h.link, len(recs), err)
	}
	if c2.name() != "client.lab0.2.pcap" {
		t.Fatalf("name %s", c2.name())
	}
	frames, err := c2.frames()
	if err != nil || len(frames) != 2 {
		t.Fatalf("Ethernet frames %d, %v; want 2", len(frames), err)
	}
}

func TestCaptureSourceLate(t *testing.T) {
	ct := newCapTest(t)
	dst := filepath.Join(t.TempDir(), "server.lab0.pcap")
	c := newCapture("server", 0, ct.src, dst)
	if err := c.flush(); err == nil {
		t.Fatal("a missing source gave no error")
	}
	ct.append(leMicro.header()[:10]) // QEMU writing its header.
	flushOK(t, c)
	if _, err := os.Stat(dst); err == nil {
		t.Fatal("a copy without a header")
	}
	ct.append(append(leMicro.header()[10:], ct.records(leMicro, 0, 2)...))
	flushOK(t, c)
	wantFrames(t, dst, leMicro, 0, ct, 0, 1)
	// A corrupt record is reported and skipped; the copy keeps what came before.
	bad := leMicro.record(ct.at(2), frame(2))
	binary.LittleEndian.PutUint32(bad[8:], 1<<30)
	ct.append(bad)
	if err := c.flush(); err == nil || !strings.Contains(err.Error(), "record of") {
		t.Fatalf("corrupt record: %v", err)
	}
	ct.append(ct.records(leMicro, 3, 4))
	flushOK(t, c)
	wantFrames(t, dst, leMicro, 0, ct, 0, 1, 3)
}

// TestRunCaptures: every link of every guest (a routed lab's router has
// two) is copied to ROLE.labN.pcap; the ICMP reader sees this run's frames
// only.
func TestRunCaptures(t *testing.T) {
	labDir, runDir := t.TempDir(), t.TempDir()
	st := &lab.State{Name: "routed"}
	srcs := map[string]*capTest{}
	for _, g := range []struct {
		role  string
		links int
	}{{lab.RoleClient, 1}, {lab.RoleRouter, 2}, {lab.RoleServer, 1}} {
		gs := lab.GuestState{Role: g.role}
		for i := 0; i < g.links; i++ {
			name := fmt.Sprintf("%s.lab%d.pcap", g.role, i)
			ct := &capTest{t: t, src: filepath.Join(labDir, name), t0: time.Unix(1795614000, 0)}
			ct.append(append(leMicro.header(), ct.records(leMicro, 0, 2)...))
			srcs[name] = ct
			gs.Links = append(gs.Links, lab.LinkState{Pcap: ct.src})
		}
		st.Guests = append(st.Guests, gs)
	}
	// An ICMP host unreachable from an earlier run, stamped after this
	// run's fault: only its place in the file says it is not this run's.
	fault := time.Unix(1795614100, 0)
	icmp := ipv4Frame(1, []byte{3, 1, 0, 0, 0, 0, 0, 0})
	srcs["client.lab0.pcap"].append(leMicro.record(fault.Add(time.Second), icmp))

	r := &Run{Dir: runDir, cfg: Config{Lab: &lab.Lab{State: st}}, log: slog.New(slog.DiscardHandler), faultStart: fault}
	r.startCaptures()
	i := 10
	for _, ct := range srcs {
		ct.append(ct.records(leMicro, i, i+2))
		i += 10
	}
	srcs["client.lab0.pcap"].append(leMicro.record(fault.Add(2*time.Second), icmp))
	// The client's QEMU stamps 0.5 s behind the host's clock: its last
	// write came 0.5 s after the ICMP's stamp.
	last := fault.Add(2500 * time.Millisecond)
	if err := os.Chtimes(srcs["client.lab0.pcap"].src, last, last); err != nil {
		t.Fatal(err)
	}
	frames, err := r.capturedFrames("client", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Moved onto the host's clock by the measured lag, the ICMP sits 2.5 s
	// after the fault.
	icmps := icmpUnreachable(frames)
	if len(icmps) != 1 || icmps[0].At.Sub(fault) != 2500*time.Millisecond {
		t.Fatalf("ICMP in the run's client capture: %+v", icmps)
	}
	r.flushCaptures("end of run")
	for name, ct := range srcs {
		h, recs, err := readPcap(filepath.Join(runDir, name))
		if err != nil || h.link != linkEthernet {
			t.Fatalf("%s: %v", name, err)
		}
		want := 2
		if name == "client.lab0.pcap" {
			want = 3
		}
		if len(recs) != want || !recs[0].At.After(ct.at(9)) {
			t.Fatalf("%s: %d records from %v, want %d of this run", name, len(recs), recs[0].At, want)
		}
	}
	if frames, err := r.capturedFrames(lab.RoleRouter, 1); err != nil || len(frames) != 2 {
		t.Fatalf("router link 1: %d frames, %v", len(frames), err)
	}
	if _, err := r.capturedFrames(lab.RoleServer, 1); err == nil {
		t.Fatal("a link the server does not have gave no error")
	}
	if len(r.host) < 2 || r.host[0].Ev != "capture_start" || r.host[len(r.host)-1].Ev != "capture" {
		t.Fatalf("host events %+v", r.host)
	}
	var d struct {
		Why   string                 `json:"why"`
		Files map[string]captureStat `json:"files"`
	}
	if err := r.host[len(r.host)-1].DecodeData(&d); err != nil || d.Why != "end of run" || len(d.Files) != 4 ||
		d.Files["router.lab1.pcap"].Records != 2 {
		t.Fatalf("capture event %+v, %v", d, err)
	}
}
