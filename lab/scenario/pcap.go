package scenario

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Classic pcap layout (what QEMU's filter-dump writes).
const (
	pcapHeaderLen    = 24
	pcapRecHeaderLen = 16
	// maxPcapRecord bounds a record's captured length; anything larger is
	// taken as a corrupt file.
	maxPcapRecord = 1 << 18
	// linkEthernet is the pcap link type of Ethernet frames.
	linkEthernet = 1
)

// errNotPcap says a file does not start with a classic pcap header.
var errNotPcap = errors.New("not a pcap file")

// pcapHeader is a classic pcap file's global header.
type pcapHeader struct {
	raw     [pcapHeaderLen]byte
	order   binary.ByteOrder
	nano    bool
	snaplen uint32
	link    uint32
}

// parsePcapHeader decodes a global header: byte order and timestamp
// resolution from the magic number, snap length and link type.
func parsePcapHeader(b []byte) (pcapHeader, error) {
	var h pcapHeader
	if len(b) < pcapHeaderLen {
		return h, fmt.Errorf("%w: %d-byte header", errNotPcap, len(b))
	}
	copy(h.raw[:], b)
	switch binary.LittleEndian.Uint32(b[:4]) {
	case 0xa1b2c3d4:
		h.order = binary.LittleEndian
	case 0xa1b23c4d:
		h.order, h.nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		h.order = binary.BigEndian
	case 0x4d3cb2a1:
		h.order, h.nano = binary.BigEndian, true
	default:
		return h, errNotPcap
	}
	h.snaplen, h.link = h.order.Uint32(b[16:20]), h.order.Uint32(b[20:24])
	return h, nil
}

// sameFormat reports whether records of h and o are laid out alike (byte
// order and timestamp resolution).
func (h pcapHeader) sameFormat(o pcapHeader) bool {
	return h.order == o.order && h.nano == o.nano
}

// recHeader is a decoded record header; Frac is in nanoseconds whatever the
// file's resolution.
type recHeader struct {
	Sec, Frac  uint32
	Incl, Orig uint32
}

// At is the record's stamp.
func (rh recHeader) At() time.Time { return time.Unix(int64(rh.Sec), int64(rh.Frac)) }

// decodeRec decodes a 16-byte record header; a captured length above
// maxPcapRecord is an error.
func (h pcapHeader) decodeRec(b []byte) (recHeader, error) {
	rh := recHeader{Sec: h.order.Uint32(b[0:4]), Frac: h.order.Uint32(b[4:8]), Incl: h.order.Uint32(b[8:12]), Orig: h.order.Uint32(b[12:16])}
	if !h.nano {
		rh.Frac *= 1000
	}
	if rh.Incl > maxPcapRecord {
		return rh, fmt.Errorf("record of %d bytes", rh.Incl)
	}
	return rh, nil
}

// encodeRec writes rh as a record header in h's byte order and resolution.
func (h pcapHeader) encodeRec(rh recHeader) [pcapRecHeaderLen]byte {
	var b [pcapRecHeaderLen]byte
	frac := rh.Frac
	if !h.nano {
		frac /= 1000
	}
	h.order.PutUint32(b[0:4], rh.Sec)
	h.order.PutUint32(b[4:8], frac)
	h.order.PutUint32(b[8:12], rh.Incl)
	h.order.PutUint32(b[12:16], rh.Orig)
	return b
}

// pcapRecord is one captured frame.
type pcapRecord struct {
	// At is the capture's stamp (QEMU: its own clock, see capture.go).
	At time.Time
	// Len is the frame's length on the wire; Data may be shorter (snap length).
	Len  int
	Data []byte
}

// scanRecords reads complete records from r until its end, calling each
// with every record's raw and decoded header and, when keep is set, its data
// (else nil); it returns the bytes consumed, which stop before a partial
// last record (a capture still being written).
func scanRecords(r io.Reader, h pcapHeader, keep bool, each func(raw []byte, rh recHeader, data []byte)) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var n int64
	var raw [pcapRecHeaderLen]byte
	for {
		if _, err := io.ReadFull(br, raw[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return n, nil
			}
			return n, err
		}
		rh, err := h.decodeRec(raw[:])
		if err != nil {
			return n, err
		}
		var data []byte
		if keep {
			data = make([]byte, rh.Incl)
			if _, err := io.ReadFull(br, data); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					return n, nil
				}
				return n, err
			}
		} else if d, err := br.Discard(int(rh.Incl)); d < int(rh.Incl) {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		n += pcapRecHeaderLen + int64(rh.Incl)
		each(raw[:], rh, data)
	}
}

// readPcap reads a classic pcap file: its header and every complete record
// (a capture still being written may end mid-record).
func readPcap(path string) (pcapHeader, []pcapRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return pcapHeader{}, nil, err
	}
	defer f.Close()
	var gh [pcapHeaderLen]byte
	if _, err := io.ReadFull(f, gh[:]); err != nil {
		return pcapHeader{}, nil, fmt.Errorf("pcap %s: header: %w", path, err)
	}
	h, err := parsePcapHeader(gh[:])
	if err != nil {
		return h, nil, fmt.Errorf("pcap %s: %w", path, err)
	}
	var out []pcapRecord
	_, err = scanRecords(f, h, true, func(_ []byte, rh recHeader, data []byte) {
		out = append(out, pcapRecord{At: rh.At(), Len: int(rh.Orig), Data: data})
	})
	if err != nil {
		return h, out, fmt.Errorf("pcap %s: %w", path, err)
	}
	return h, out, nil
}

// ICMP destination-unreachable codes hostlab reports on.
const (
	icmpDestUnreach = 3
	icmpNetUnreach  = 0
	icmpHostUnreach = 1
)

// icmpEvent is an ICMP destination unreachable seen in a capture.
type icmpEvent struct {
	At   time.Time
	Code int
	From [4]byte
}

// readICMPUnreachable lists the ICMPv4 destination-unreachable messages in a
// classic pcap file of Ethernet frames.
func readICMPUnreachable(path string) ([]icmpEvent, error) {
	h, recs, err := readPcap(path)
	if err != nil {
		return nil, err
	}
	if h.link != linkEthernet {
		return nil, fmt.Errorf("pcap %s: link type %d is not Ethernet", path, h.link)
	}
	return icmpUnreachable(recs), nil
}

// icmpUnreachable picks the ICMPv4 destination-unreachable messages out of
// Ethernet frames.
func icmpUnreachable(recs []pcapRecord) []icmpEvent {
	var out []icmpEvent
	for _, rec := range recs {
		if ev, ok := parseICMPUnreach(rec.Data); ok {
			ev.At = rec.At
			out = append(out, ev)
		}
	}
	return out
}

// parseICMPUnreach decodes an Ethernet/IPv4/ICMP destination unreachable.
func parseICMPUnreach(frame []byte) (icmpEvent, bool) {
	if len(frame) < 14+20+8 || frame[12] != 0x08 || frame[13] != 0x00 {
		return icmpEvent{}, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl+8 || ip[9] != 1 {
		return icmpEvent{}, false
	}
	icmp := ip[ihl:]
	if icmp[0] != icmpDestUnreach {
		return icmpEvent{}, false
	}
	var from [4]byte
	copy(from[:], ip[12:16])
	return icmpEvent{Code: int(icmp[1]), From: from}, true
}
