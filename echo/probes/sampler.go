package probes

import (
	"cmp"
	"net/netip"
	"slices"
)

// sockKey identifies a socket across samples by its addresses, so that a
// socket that becomes a TIME_WAIT entry (and loses its inode) is a change,
// not a new socket; n tells apart rare duplicates within one sample.
type sockKey struct {
	local, peer netip.AddrPort
	n           int
}

// rtoStep is the factor by which tcp_info's RTO must move from the value
// last written to count as a change: each retransmission timeout doubles
// it (and the first ACK after halves it back), while RTT estimates move it
// by a few percent on every ACK.
const rtoStep = 1.5

// changed reports whether cur differs from rep, the socket as last written,
// in what marks a step in the connection's fate: state, queues, pending
// timer, retransmission and probe counts and, from tcp_info, the
// congestion state, backoff, lost and retransmitted segments, total
// retransmissions and RTO timeouts, a zero send window, socket drops, and
// the RTO when it moved by rtoStep. RTT, cwnd, times and byte counters alone
// are no change.
func changed(rep, cur Socket) bool {
	if rep.State != cur.State || rep.TxQueue != cur.TxQueue || rep.RxQueue != cur.RxQueue ||
		rep.Timer != cur.Timer || rep.Retransmits != cur.Retransmits || rep.Probes != cur.Probes ||
		(rep.Info == nil) != (cur.Info == nil) || (rep.Mem == nil) != (cur.Mem == nil) {
		return true
	}
	if rep.Mem != nil && rep.Mem.Drops != cur.Mem.Drops {
		return true
	}
	if rep.Info == nil {
		return false
	}
	a, b := rep.Info, cur.Info
	if a.Ca_state != b.Ca_state || a.Backoff != b.Backoff || a.Lost != b.Lost || a.Retrans != b.Retrans ||
		a.Total_retrans != b.Total_retrans || a.Total_rto != b.Total_rto || (a.Snd_wnd == 0) != (b.Snd_wnd == 0) {
		return true
	}
	lo, hi := float64(min(a.Rto, b.Rto)), float64(max(a.Rto, b.Rto))
	return hi >= lo*rtoStep && hi > lo
}

// tracked is a matching socket across samples.
type tracked struct {
	seen     Socket // in the latest sample
	reported Socket // as last written
}

// sampler remembers the matching sockets of the previous sample.
type sampler struct {
	port uint16
	last map[sockKey]tracked
}

func newSampler(port uint16) *sampler {
	return &sampler{port: port, last: map[sockKey]tracked{}}
}

// update takes a full sample and returns, unstamped, a "sock" record for each
// matching socket that is new or changed (see changed), in sample order,
// then a "sock_gone" record, as last seen, for each that disappeared, by
// address.
func (s *sampler) update(socks []Socket) []SockRecord {
	var out []SockRecord
	cur := make(map[sockKey]tracked, len(s.last))
	for _, so := range socks {
		if so.Local.Port() != s.port && so.Peer.Port() != s.port {
			continue
		}
		k := sockKey{local: so.Local, peer: so.Peer}
		for _, dup := cur[k]; dup; _, dup = cur[k] {
			k.n++
		}
		t := tracked{seen: so, reported: so}
		if old, ok := s.last[k]; ok && !changed(old.reported, so) {
			t.reported = old.reported
		} else {
			out = append(out, record("sock", so))
		}
		cur[k] = t
	}
	var gone []Socket
	for k, t := range s.last {
		if _, ok := cur[k]; !ok {
			gone = append(gone, t.seen)
		}
	}
	slices.SortFunc(gone, func(a, b Socket) int {
		return cmp.Or(a.Local.Compare(b.Local), a.Peer.Compare(b.Peer))
	})
	for _, so := range gone {
		out = append(out, record("sock_gone", so))
	}
	s.last = cur
	return out
}

// record turns a socket into an unstamped line.
func record(ev string, s Socket) SockRecord {
	return SockRecord{
		Ev:       ev,
		Local:    unmap(s.Local).String(),
		Peer:     unmap(s.Peer).String(),
		State:    s.State.String(),
		TxQueue:  s.TxQueue,
		RxQueue:  s.RxQueue,
		Timer:    s.Timer.String(),
		TimerMS:  s.TimerLeft.Milliseconds(),
		Retrnsmt: s.Retransmits,
		Probes:   s.Probes,
		Inode:    s.Inode,
		UID:      s.UID,
		Info:     s.Info,
		Mem:      s.Mem,
	}
}

// unmap shows an IPv4-mapped IPv6 address as IPv4.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
