package scenario

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"time"
)

// arpFrame is an ARP packet on the client's wire.
type arpFrame struct {
	At time.Time
	// Request is an ARP request (opcode 1), else a reply.
	Request bool
	// Broadcast says it went to ff:ff:ff:ff:ff:ff (a resolution's request;
	// an entry in PROBE asks by unicast).
	Broadcast bool
	// Sender and Target are the protocol addresses.
	Sender, Target netip.Addr
}

// parseARP decodes an Ethernet frame holding an IPv4-over-Ethernet ARP
// packet.
func parseARP(d []byte) (arpFrame, bool) {
	if len(d) < 14+28 || binary.BigEndian.Uint16(d[12:14]) != 0x0806 {
		return arpFrame{}, false
	}
	a := d[14:]
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != 0x0800 || a[4] != 6 || a[5] != 4 {
		return arpFrame{}, false
	}
	bcast := true
	for _, b := range d[0:6] {
		bcast = bcast && b == 0xff
	}
	return arpFrame{Request: binary.BigEndian.Uint16(a[6:8]) == 1, Broadcast: bcast,
		Sender: netip.AddrFrom4([4]byte(a[14:18])), Target: netip.AddrFrom4([4]byte(a[24:28]))}, true
}

// ipv4TCP decodes an Ethernet frame holding an IPv4 TCP segment: its
// endpoints and the segment.
func ipv4TCP(f pcapRecord) (src, dst endpoint, s Segment, ok bool) {
	d := f.Data
	if len(d) < 14 || binary.BigEndian.Uint16(d[12:14]) != 0x0800 {
		return
	}
	ip := d[14:]
	if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 6 {
		return
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || len(ip) < ihl+20 || total < ihl+20 {
		return
	}
	tcp := ip[ihl:]
	doff := int(tcp[12]>>4) * 4
	if doff < 20 || ihl+doff > total {
		return
	}
	src = endpoint{netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(tcp[0:2])}
	dst = endpoint{netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(tcp[2:4])}
	s = Segment{At: f.At, Seq: binary.BigEndian.Uint32(tcp[4:8]), Ack: binary.BigEndian.Uint32(tcp[8:12]),
		Len: total - ihl - doff, Flags: tcp[13], Win: binary.BigEndian.Uint16(tcp[14:16])}
	return src, dst, s, true
}

// synWire is what the client's capture shows of one connect attempt: the
// SYNs, the server's answer, and the client's ARP for the server.
type synWire struct {
	// Client is the connecting socket (its port from the first SYN) and
	// Server the address it connects to.
	Client, Server endpoint
	// SYNs are the client's SYNs of the attempt.
	SYNs []Segment
	// RST is the server's RST to the attempt, and SynAck its SYN-ACK.
	RST, SynAck time.Time
	// Requests are the client's ARP requests for the server's address.
	Requests []arpFrame
	// Replies are the server's ARP replies.
	Replies []time.Time
}

// First is the first frame the connect put on the wire: its SYN, or the ARP
// request sent while the SYN waited for the server's address (zero if none).
func (w synWire) First() time.Time {
	var t time.Time
	if len(w.SYNs) > 0 {
		t = w.SYNs[0].At
	}
	if len(w.Requests) > 0 && (t.IsZero() || w.Requests[0].At.Before(t)) {
		t = w.Requests[0].At
	}
	return t
}

// analyseSynWire picks the first connect attempt to server at or after
// since out of the client's frames.
func analyseSynWire(frames []pcapRecord, server endpoint, since time.Time) synWire {
	w := synWire{Server: server}
	sort.SliceStable(frames, func(i, j int) bool { return frames[i].At.Before(frames[j].At) })
	for _, f := range frames {
		if f.At.Before(since) {
			continue
		}
		if a, ok := parseARP(f.Data); ok {
			a.At = f.At
			switch {
			case a.Request && a.Target == server.Addr && a.Sender != server.Addr:
				w.Requests = append(w.Requests, a)
			case !a.Request && a.Sender == server.Addr:
				w.Replies = append(w.Replies, a.At)
			}
			continue
		}
		src, dst, s, ok := ipv4TCP(f)
		if !ok {
			continue
		}
		switch {
		case dst == server && s.Has(tcpSYN) && !s.Has(tcpACK):
			if len(w.SYNs) == 0 {
				w.Client = src
			}
			if src == w.Client {
				w.SYNs = append(w.SYNs, s)
			}
		case len(w.SYNs) > 0 && src == server && dst == w.Client:
			if s.Has(tcpRST) && w.RST.IsZero() {
				w.RST = s.At
			}
			if s.Has(tcpSYN) && s.Has(tcpACK) && w.SynAck.IsZero() {
				w.SynAck = s.At
			}
		}
	}
	return w
}

// resolutions groups the client's broadcast requests for the server into
// runs, one per resolution of an INCOMPLETE entry (at most per requests,
// one interval apart: more, or a silence of more than two intervals, start
// the next), and keeps the runs the server never answered: no reply from
// the run's first request to one interval after its last.
func (w synWire) resolutions(interval time.Duration, per int) [][]time.Time {
	var runs [][]time.Time
	for _, r := range w.Requests {
		if !r.Broadcast {
			continue
		}
		if n := len(runs); n > 0 && len(runs[n-1]) < per && r.At.Sub(runs[n-1][len(runs[n-1])-1]) <= 2*interval {
			runs[n-1] = append(runs[n-1], r.At)
			continue
		}
		runs = append(runs, []time.Time{r.At})
	}
	var out [][]time.Time
	for _, run := range runs {
		answered := false
		for _, rp := range w.Replies {
			answered = answered || (!rp.Before(run[0]) && !rp.After(run[len(run)-1].Add(interval)))
		}
		if !answered {
			out = append(out, run)
		}
	}
	return out
}
