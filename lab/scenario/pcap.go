package scenario

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

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
// classic pcap file of Ethernet frames (what QEMU's filter-dump writes,
// stamped with the host's clock).
func readICMPUnreachable(path string) ([]icmpEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var gh [24]byte
	if _, err := io.ReadFull(f, gh[:]); err != nil {
		return nil, fmt.Errorf("pcap %s: header: %w", path, err)
	}
	var bo binary.ByteOrder
	nano := false
	switch binary.LittleEndian.Uint32(gh[:4]) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("pcap %s: not a pcap file", path)
	}
	if link := bo.Uint32(gh[20:24]); link != 1 {
		return nil, fmt.Errorf("pcap %s: link type %d is not Ethernet", path, link)
	}
	var out []icmpEvent
	for {
		var rh [16]byte
		if _, err := io.ReadFull(f, rh[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return out, nil // A capture still being written may end mid-record.
			}
			return out, err
		}
		sec, frac := int64(bo.Uint32(rh[0:4])), int64(bo.Uint32(rh[4:8]))
		incl := bo.Uint32(rh[8:12])
		if incl > 1<<18 {
			return out, fmt.Errorf("pcap %s: record of %d bytes", path, incl)
		}
		frame := make([]byte, incl)
		if _, err := io.ReadFull(f, frame); err != nil {
			return out, nil
		}
		if !nano {
			frac *= 1000
		}
		if ev, ok := parseICMPUnreach(frame); ok {
			ev.At = time.Unix(sec, frac)
			out = append(out, ev)
		}
	}
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
