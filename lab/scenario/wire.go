package scenario

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// TCP header flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// readFrames reads every complete record of a classic pcap file of
// Ethernet frames.
func readFrames(path string) ([]pcapRecord, error) {
	h, recs, err := readPcap(path)
	if err != nil {
		return nil, err
	}
	if h.link != linkEthernet {
		return nil, fmt.Errorf("pcap %s: link type %d is not Ethernet", path, h.link)
	}
	return recs, nil
}

// Segment is one TCP segment of the observed connection as the client's NIC
// saw it, stamped with the host's clock.
type Segment struct {
	// At is when QEMU passed the frame (host clock).
	At time.Time `json:"at"`
	// Out is true for a segment the client sent.
	Out bool `json:"out"`
	// Seq and Ack are the sequence and acknowledgement numbers.
	Seq uint32 `json:"seq"`
	Ack uint32 `json:"ack"`
	// Len is the payload length.
	Len int `json:"len"`
	// Flags are the TCP flags.
	Flags uint8 `json:"flags"`
	// Win is the window field as sent (unscaled; 0 is a closed window).
	Win uint16 `json:"win"`
}

// Has reports whether the segment carries flag f.
func (s Segment) Has(f uint8) bool { return s.Flags&f != 0 }

// endpoint is an IPv4 address and port.
type endpoint struct {
	Addr netip.Addr
	Port uint16
}

// parseEndpoint parses "192.168.77.1:43210".
func parseEndpoint(s string) (endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return endpoint{}, err
	}
	return endpoint{ap.Addr().Unmap(), ap.Port()}, nil
}

// tcpSegments picks the segments of the connection client<->server out of
// Ethernet frames (IPv4 only, the lab's links), in capture order, from the
// instant since on.
func tcpSegments(frames []pcapRecord, client, server endpoint, since time.Time) []Segment {
	var out []Segment
	for _, f := range frames {
		if f.At.Before(since) {
			continue
		}
		d := f.Data
		if len(d) < 14 || binary.BigEndian.Uint16(d[12:14]) != 0x0800 {
			continue
		}
		ip := d[14:]
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 6 {
			continue
		}
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if ihl < 20 || len(ip) < ihl+20 || total < ihl+20 {
			continue
		}
		src := netip.AddrFrom4([4]byte(ip[12:16]))
		dst := netip.AddrFrom4([4]byte(ip[16:20]))
		tcp := ip[ihl:min(total, len(ip))] // The capture may cut the payload short.
		sp, dp := binary.BigEndian.Uint16(tcp[0:2]), binary.BigEndian.Uint16(tcp[2:4])
		doff := int(tcp[12]>>4) * 4
		if doff < 20 || ihl+doff > total {
			continue
		}
		s := Segment{At: f.At, Seq: binary.BigEndian.Uint32(tcp[4:8]), Ack: binary.BigEndian.Uint32(tcp[8:12]),
			Len: total - ihl - doff, Flags: tcp[13], Win: binary.BigEndian.Uint16(tcp[14:16])}
		switch {
		case src == client.Addr && sp == client.Port && dst == server.Addr && dp == server.Port:
			s.Out = true
		case src == server.Addr && sp == server.Port && dst == client.Addr && dp == client.Port:
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// seqAfter reports whether a is after b in sequence space.
func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// Wire is what the client's capture says about the connection after the
// fault: the unacknowledged segment's first send, its retransmissions,
// keepalive probes, and the first FIN and RST from the server.
type Wire struct {
	// Segments are the connection's segments from the run's start.
	Segments []Segment `json:"-"`
	// Sent is the first transmission of the oldest segment the server never
	// acknowledged (zero if everything was acknowledged).
	Sent time.Time `json:"sent,omitzero"`
	// Retrans are the retransmissions of unacknowledged data after Sent.
	Retrans []time.Time `json:"retransmissions,omitempty"`
	// Probes are keepalive probes the client sent after the fault.
	Probes []time.Time `json:"keepalive_probes,omitempty"`
	// FIN and RST are the first FIN and RST from the server after the fault.
	FIN time.Time `json:"fin,omitzero"`
	RST time.Time `json:"rst,omitzero"`
	// LastFromServer is the last segment received from the server before
	// the fault.
	LastFromServer time.Time `json:"last_from_server,omitzero"`
}

// analyseWire classifies the connection's segments around the fault.
func analyseWire(segs []Segment, fault time.Time) Wire {
	w := Wire{Segments: segs}
	var sndNxt, sndUna uint32
	haveNxt, haveUna := false, false
	// sentAt maps the start sequence of each data segment to its first send.
	sentAt := map[uint32]time.Time{}
	var retx []Segment
	for _, s := range segs {
		if !s.Out {
			if s.Has(tcpACK) && (!haveUna || seqAfter(s.Ack, sndUna)) {
				sndUna, haveUna = s.Ack, true
			}
			if !s.At.Before(fault) {
				if s.Has(tcpFIN) && w.FIN.IsZero() {
					w.FIN = s.At
				}
				if s.Has(tcpRST) && w.RST.IsZero() {
					w.RST = s.At
				}
			} else {
				w.LastFromServer = s.At
			}
			continue
		}
		end := s.Seq + uint32(s.Len)
		if s.Has(tcpSYN) || s.Has(tcpFIN) {
			end++
		}
		switch {
		case s.Len == 0 && !s.Has(tcpSYN|tcpFIN):
			// A pure ACK, or a zero-length keepalive probe (seq = snd_una-1).
			if haveUna && s.Seq == sndUna-1 && !s.At.Before(fault) {
				w.Probes = append(w.Probes, s.At)
			}
		case s.Len == 1 && haveUna && s.Seq == sndUna-1 && !s.At.Before(fault):
			w.Probes = append(w.Probes, s.At) // A keepalive probe with one garbage byte.
		case !haveNxt || seqAfter(end, sndNxt):
			sndNxt, haveNxt = end, true
			sentAt[s.Seq] = s.At
		default:
			retx = append(retx, s)
		}
	}
	// Keep the retransmissions of data the server never acknowledged; Sent
	// is the first transmission of the oldest such segment.
	for _, r := range retx {
		if haveUna && !seqAfter(r.Seq+uint32(max(r.Len, 1)), sndUna) {
			continue // Acknowledged later: an ordinary recovery.
		}
		w.Retrans = append(w.Retrans, r.At)
		if t, ok := sentAt[r.Seq]; ok && (w.Sent.IsZero() || t.Before(w.Sent)) {
			w.Sent = t
		}
	}
	return w
}

// writeFramesPcap writes frames as a nanosecond pcap file.
func writeFramesPcap(path string, frames []pcapRecord) error {
	var b []byte
	gh := make([]byte, 24)
	binary.LittleEndian.PutUint32(gh[0:], 0xa1b23c4d)
	binary.LittleEndian.PutUint16(gh[4:], 2)
	binary.LittleEndian.PutUint16(gh[6:], 4)
	binary.LittleEndian.PutUint32(gh[16:], 65535)
	binary.LittleEndian.PutUint32(gh[20:], 1)
	b = append(b, gh...)
	for _, f := range frames {
		rh := make([]byte, 16)
		binary.LittleEndian.PutUint32(rh[0:], uint32(f.At.Unix()))
		binary.LittleEndian.PutUint32(rh[4:], uint32(f.At.Nanosecond()))
		binary.LittleEndian.PutUint32(rh[8:], uint32(len(f.Data)))
		binary.LittleEndian.PutUint32(rh[12:], uint32(max(f.Len, len(f.Data))))
		b = append(append(b, rh...), f.Data...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write capture: %w", err)
	}
	return nil
}
