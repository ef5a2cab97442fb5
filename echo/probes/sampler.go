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

// sockView is what makes a socket's line worth writing again.
type sockView struct {
	state       State
	txQueue     uint32
	rxQueue     uint32
	retransmits uint32
	timer       Timer
}

func viewOf(s Socket) sockView {
	return sockView{s.State, s.TxQueue, s.RxQueue, s.Retransmits, s.Timer}
}

// sampler remembers the matching sockets of the previous sample.
type sampler struct {
	port uint16
	last map[sockKey]Socket
}

func newSampler(port uint16) *sampler {
	return &sampler{port: port, last: map[sockKey]Socket{}}
}

// update takes a full sample and returns, unstamped, a "sock" record for each
// matching socket that is new or changed, in table order, then a "sock_gone"
// record for each that disappeared, by address.
func (s *sampler) update(socks []Socket) []SockRecord {
	var out []SockRecord
	cur := make(map[sockKey]Socket, len(s.last))
	for _, so := range socks {
		if so.Local.Port() != s.port && so.Peer.Port() != s.port {
			continue
		}
		k := sockKey{local: so.Local, peer: so.Peer}
		for _, dup := cur[k]; dup; _, dup = cur[k] {
			k.n++
		}
		cur[k] = so
		if old, ok := s.last[k]; !ok || viewOf(old) != viewOf(so) {
			out = append(out, record("sock", so))
		}
	}
	var gone []Socket
	for k, so := range s.last {
		if _, ok := cur[k]; !ok {
			gone = append(gone, so)
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
		Retrnsmt: s.Retransmits,
		Inode:    s.Inode,
		UID:      s.UID,
	}
}

// unmap shows an IPv4-mapped IPv6 address as IPv4.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
