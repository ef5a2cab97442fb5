package scenario

// Captures of the lab links, copied run by run.
//
// QEMU's filter-dump writes every frame of a guest's lab link to
// HOME/labs/LAB/ROLE.labN.pcap for as long as that guest's QEMU process
// lives. The file outlives runs (the client's holds every run since the lab
// came up), and a new QEMU process — libvirt starting a destroyed or
// shut-off domain — truncates it and starts afresh with a new header. A
// copy of the whole file at the end of a run would hold other runs' frames,
// or, for a server that was powered off and started again, only what came
// after the restart.
//
// So each run copies its part incrementally. At the start it notes, per
// file, its identity and the end of its last complete record; every flush
// appends the complete records written since to the run folder's
// ROLE.labN.pcap (the first flush writes the global header once) and never
// a record QEMU is still writing. A flush runs right before every start of a
// guest's QEMU process — a destroyed domain's file is complete once its QEMU
// exited, so this keeps the server's last frames before the fault — and at
// the end of the run. A reset does not restart QEMU; the file continues.
//
// A flush that finds the file replaced (another inode), shorter than what
// was read, or rewritten (the global header or the last record read differ
// from what is at their offsets) reads the new file from its first record.
// A new file whose byte order or timestamp resolution differs from the
// copy's has its record headers converted to the copy's (nanoseconds become
// microseconds when the copy has microseconds); one with another link type
// cannot share the copy and starts a second one, ROLE.labN.2.pcap (and so
// on). QEMU writes the same header every time, so neither is expected.
//
// QEMU stamps a record with whole seconds of the host's clock when the dump
// was opened plus its virtual clock, which starts when the guest's CPUs do:
// stamps run behind the host's clock by a constant per QEMU process — the
// fraction of that second plus QEMU's start-up, seconds under load (8.6 to
// 10.9 s seen on a busy two-core TCG host). Where it can, every look at a
// source file measures it as the file's modification time (the host's time
// of its last write) less the stamp of its last record, which QEMU wrote
// last; the timeline's capture events carry it (clock_lag_ms). The copies
// keep QEMU's stamps; capturedFrames moves them onto the host's axis.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hostlab/hostlab/lab/timeline"
)

// capture copies one lab link's capture file into the run folder.
type capture struct {
	role string
	link int
	src  string // the file QEMU writes
	dst  string // the copy's first file in the run folder

	// The source file being read.
	seen     bool // a source file was opened: dev and ino are valid
	dev, ino uint64
	hdr      *pcapHeader // its global header; nil until read
	off      int64       // end of the last complete record taken (or skipped)
	last     []byte      // header of the record ending at off, to tell a rewritten file
	lastOff  int64       // where that record starts; -1 when none was read
	lastAt   time.Time   // its stamp

	// The copy.
	out *pcapHeader // header of the copy file being written; nil before the first write
	seg int         // copy file number: 0 is dst, n is dst's name with .n+1 before .pcap

	records int    // records copied
	files   int    // source files read: more than one after a restart
	spans   []span // the copy's records by source file, in order
	noted   string // the last error noted, to note each once
}

// span is the run of a copy's records that came from one source file (one
// QEMU process), with that file's capture clock lag.
type span struct {
	records  int
	lag      time.Duration // the capture clock behind the host's
	measured bool          // lag was measured
}

// measure notes the current source file's lag when its last write was the
// record ending at off (stat of size and mtime taken together).
func (c *capture) measure(size int64, mtime time.Time) {
	if c.lastOff >= 0 && c.off == size && len(c.spans) > 0 {
		s := &c.spans[len(c.spans)-1]
		s.lag, s.measured = mtime.Sub(c.lastAt), true
	}
}

// newCapture notes where this run's frames begin in src: after the last
// complete record it holds now (all of it when it does not exist yet or has
// no header).
func newCapture(role string, link int, src, dst string) *capture {
	c := &capture{role: role, link: link, src: src, dst: dst, lastOff: -1}
	f, err := os.Open(src)
	if err != nil {
		return c
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return c
	}
	c.seen, c.files, c.spans = true, 1, []span{{}}
	c.dev, c.ino = fileID(fi)
	var gh [pcapHeaderLen]byte
	if _, err := io.ReadFull(f, gh[:]); err != nil {
		return c // QEMU has not written its header yet.
	}
	h, err := parsePcapHeader(gh[:])
	if err != nil {
		return c // Every flush reports it.
	}
	c.hdr, c.off = &h, pcapHeaderLen
	pos := c.off
	n, err := scanRecords(io.NewSectionReader(f, c.off, fi.Size()-c.off), h, false, func(raw []byte, rh recHeader, _ []byte) {
		c.last, c.lastOff, c.lastAt = append(c.last[:0], raw...), pos, rh.At()
		pos += pcapRecHeaderLen + int64(rh.Incl)
	})
	c.off += n
	if err != nil {
		// A corrupt record: skip the whole file as it is now.
		c.off, c.last, c.lastOff = fi.Size(), nil, -1
	}
	c.measure(fi.Size(), fi.ModTime())
	return c
}

// name is the copy's file name in the run folder.
func (c *capture) name() string { return filepath.Base(c.path(c.seg)) }

// path is the run folder's copy file number seg.
func (c *capture) path(seg int) string {
	if seg == 0 {
		return c.dst
	}
	return fmt.Sprintf("%s.%d.pcap", strings.TrimSuffix(c.dst, ".pcap"), seg+1)
}

// fileID is a file's device and inode.
func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}

// continues reports whether f (of identity dev, ino and the given size) is
// the file read so far, grown or not: not replaced, truncated or rewritten.
func (c *capture) continues(f *os.File, dev, ino uint64, size int64) bool {
	if dev != c.dev || ino != c.ino || size < c.off {
		return false
	}
	if c.hdr != nil {
		var gh [pcapHeaderLen]byte
		if _, err := f.ReadAt(gh[:], 0); err != nil || gh != c.hdr.raw {
			return false
		}
	}
	if c.lastOff >= 0 {
		b := make([]byte, len(c.last))
		if _, err := f.ReadAt(b, c.lastOff); err != nil || !bytes.Equal(b, c.last) {
			return false
		}
	}
	return true
}

// flush appends to the copy every complete record written to the source
// since the last flush.
func (c *capture) flush() error {
	f, err := os.Open(c.src)
	if err != nil {
		return fmt.Errorf("capture %s: %w", c.src, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("capture %s: %w", c.src, err)
	}
	size := fi.Size()
	dev, ino := fileID(fi)
	if !c.seen || !c.continues(f, dev, ino, size) {
		c.hdr, c.off, c.last, c.lastOff = nil, 0, nil, -1
		c.files++
		c.spans = append(c.spans, span{})
	}
	c.seen, c.dev, c.ino = true, dev, ino
	if c.hdr == nil {
		var gh [pcapHeaderLen]byte
		if _, err := f.ReadAt(gh[:], 0); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // QEMU has not written its header yet.
			}
			return fmt.Errorf("capture %s: %w", c.src, err)
		}
		h, err := parsePcapHeader(gh[:])
		if err != nil {
			return fmt.Errorf("capture %s: %w", c.src, err)
		}
		c.hdr, c.off = &h, pcapHeaderLen
		if c.out != nil && c.out.link != h.link {
			c.seg, c.out = c.seg+1, nil
		}
	}
	// Read into buf and local state; commit once the copy is written.
	var buf bytes.Buffer
	out, fresh := c.out, c.out == nil
	if fresh {
		h := *c.hdr
		out = &h
		buf.Write(h.raw[:])
	}
	grow := c.hdr.snaplen > out.snaplen
	if grow {
		h := *out
		h.snaplen = c.hdr.snaplen
		h.order.PutUint32(h.raw[16:20], h.snaplen)
		out = &h // Never fresh: a fresh copy takes the source's header.
	}
	convert := !out.sameFormat(*c.hdr)
	pos, last, lastOff, lastAt, n := c.off, c.last, c.lastOff, c.lastAt, 0
	read, scanErr := scanRecords(io.NewSectionReader(f, c.off, size-c.off), *c.hdr, true, func(raw []byte, rh recHeader, data []byte) {
		if convert {
			e := out.encodeRec(rh)
			buf.Write(e[:])
		} else {
			buf.Write(raw)
		}
		buf.Write(data)
		last, lastOff, lastAt = append(last[:0:0], raw...), pos, rh.At()
		pos += pcapRecHeaderLen + int64(len(data))
		n++
	})
	if err := c.write(buf.Bytes(), fresh, grow, out); err != nil {
		return err
	}
	c.out, c.off, c.last, c.lastOff, c.lastAt = out, c.off+read, last, lastOff, lastAt
	c.records += n
	c.spans[len(c.spans)-1].records += n
	c.measure(size, fi.ModTime())
	if scanErr != nil {
		// A corrupt record: nothing after it can be framed.
		c.off, c.last, c.lastOff = size, nil, -1
		return fmt.Errorf("capture %s: %w (skipped to its end)", c.src, scanErr)
	}
	return nil
}

// write appends b to the copy, creating it when fresh and rewriting its
// header's snap length when grow.
func (c *capture) write(b []byte, fresh, grow bool, out *pcapHeader) error {
	flag := os.O_WRONLY
	if fresh {
		flag |= os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(c.path(c.seg), flag, 0o644)
	if err != nil {
		return fmt.Errorf("capture copy: %w", err)
	}
	if grow && !fresh {
		if _, err := f.WriteAt(out.raw[16:20], 16); err != nil {
			f.Close()
			return fmt.Errorf("capture copy %s: %w", f.Name(), err)
		}
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return fmt.Errorf("capture copy %s: %w", f.Name(), err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("capture copy %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("capture copy %s: %w", f.Name(), err)
	}
	return nil
}

// frames reads back the run's Ethernet frames from the copy (every copy
// file of Ethernet link type), their stamps moved onto the host's axis by
// their source file's lag where it was measured.
func (c *capture) frames() ([]pcapRecord, error) {
	spanOf := func(i int) span {
		for _, s := range c.spans {
			if i < s.records {
				return s
			}
			i -= s.records
		}
		return span{}
	}
	var all []pcapRecord
	i := 0
	for seg := 0; seg <= c.seg; seg++ {
		h, recs, err := readPcap(c.path(seg))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return all, err
		}
		for _, rec := range recs {
			if s := spanOf(i); s.measured {
				rec.At = rec.At.Add(s.lag)
			}
			i++
			if h.link == linkEthernet {
				all = append(all, rec)
			}
		}
	}
	return all, nil
}

// captures are a run's capture copies, one per guest link.
type captures struct {
	mu   sync.Mutex
	list []*capture
}

// captureStat is one copy's state in the timeline's capture events.
type captureStat struct {
	Source      string   `json:"source"`
	Offset      int64    `json:"offset"`
	Records     int      `json:"records"`
	SourceFiles int      `json:"source_files"`
	ClockLagMS  *float64 `json:"clock_lag_ms,omitempty"`
}

func (c *capture) stat() captureStat {
	s := captureStat{Source: c.src, Offset: c.off, Records: c.records, SourceFiles: c.files}
	if n := len(c.spans); n > 0 && c.spans[n-1].measured {
		ms := float64(c.spans[n-1].lag) / 1e6
		s.ClockLagMS = &ms
	}
	return s
}

// startCaptures notes where this run's frames begin in every guest link's
// capture. Its timeline event, stamped before, is the run's first.
func (r *Run) startCaptures() {
	at := time.Now()
	cs := &captures{}
	files := map[string]captureStat{}
	for _, g := range r.cfg.Lab.State.Guests {
		for i, l := range g.Links {
			c := newCapture(g.Role, i, l.Pcap, filepath.Join(r.Dir, fmt.Sprintf("%s.lab%d.pcap", g.Role, i)))
			cs.list = append(cs.list, c)
			files[c.name()] = c.stat()
		}
	}
	r.captures = cs
	if e, err := timeline.NewEvent(timeline.SrcHost, "capture_start", at, map[string]any{"files": files}); err == nil {
		r.mu.Lock()
		r.host = append(r.host, e)
		r.mu.Unlock()
	}
}

// flushCaptures appends every capture's new records to the run folder; why
// (e.g. before the server's QEMU starts again) goes into the timeline.
func (r *Run) flushCaptures(why string) {
	if r.captures == nil {
		return
	}
	r.captures.mu.Lock()
	defer r.captures.mu.Unlock()
	files := map[string]captureStat{}
	for _, c := range r.captures.list {
		r.flushOne(c)
		files[c.name()] = c.stat()
	}
	r.hostEvent("capture", map[string]any{"why": why, "files": files})
}

// flushOne flushes c, noting each distinct error once.
func (r *Run) flushOne(c *capture) {
	err := c.flush()
	if err == nil || err.Error() == c.noted {
		return
	}
	c.noted = err.Error()
	r.note("copy pcap: " + err.Error())
}

// capturedFrames flushes the capture of a guest's lab link and returns this
// run's frames on it so far, read back from the run folder, stamped on the
// host's axis where their capture clock's lag was measured (else as QEMU
// stamped them).
func (r *Run) capturedFrames(role string, link int) ([]pcapRecord, error) {
	if r.captures == nil {
		return nil, fmt.Errorf("no capture was started")
	}
	r.captures.mu.Lock()
	defer r.captures.mu.Unlock()
	for _, c := range r.captures.list {
		if c.role == role && c.link == link {
			if err := c.flush(); err != nil {
				return nil, err
			}
			return c.frames()
		}
	}
	return nil, fmt.Errorf("no capture of %s's lab link %d", role, link)
}
