package echo

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// TCPInfo is the subset of the kernel's struct tcp_info the lab reads.
type TCPInfo struct {
	State          string `json:"state"`
	CAState        uint8  `json:"ca_state"`
	Retransmits    uint8  `json:"retransmits"`
	Probes         uint8  `json:"probes"`
	Backoff        uint8  `json:"backoff"`
	RTOus          uint32 `json:"rto_us"`
	RTTus          uint32 `json:"rtt_us"`
	RTTVarus       uint32 `json:"rttvar_us"`
	Unacked        uint32 `json:"unacked"`
	TotalRetrans   uint32 `json:"total_retrans"`
	LastDataSentMS uint32 `json:"last_data_sent_ms"`
	LastDataRecvMS uint32 `json:"last_data_recv_ms"`
	LastAckRecvMS  uint32 `json:"last_ack_recv_ms"`
	SndCwnd        uint32 `json:"snd_cwnd"`
}

// stateNames indexes TCP state names by the kernel's TCP_* state numbers.
var stateNames = [...]string{
	1:  "ESTABLISHED",
	2:  "SYN_SENT",
	3:  "SYN_RECV",
	4:  "FIN_WAIT1",
	5:  "FIN_WAIT2",
	6:  "TIME_WAIT",
	7:  "CLOSE",
	8:  "CLOSE_WAIT",
	9:  "LAST_ACK",
	10: "LISTEN",
	11: "CLOSING",
	12: "NEW_SYN_RECV",
}

// StateName returns the name of a kernel TCP state number, or "STATE_<n>".
func StateName(s uint8) string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("STATE_%d", s)
}

// DecodeTCPInfo converts the kernel's tcp_info into a TCPInfo.
func DecodeTCPInfo(ti *unix.TCPInfo) TCPInfo {
	return TCPInfo{
		State:          StateName(ti.State),
		CAState:        ti.Ca_state,
		Retransmits:    ti.Retransmits,
		Probes:         ti.Probes,
		Backoff:        ti.Backoff,
		RTOus:          ti.Rto,
		RTTus:          ti.Rtt,
		RTTVarus:       ti.Rttvar,
		Unacked:        ti.Unacked,
		TotalRetrans:   ti.Total_retrans,
		LastDataSentMS: ti.Last_data_sent,
		LastDataRecvMS: ti.Last_data_recv,
		LastAckRecvMS:  ti.Last_ack_recv,
		SndCwnd:        ti.Snd_cwnd,
	}
}

// Changed reports whether a sample differs from prev in a field that marks a
// step in the connection's fate (state, retransmits, total_retrans, backoff,
// rto, unacked, probes).
func (t TCPInfo) Changed(prev TCPInfo) bool {
	return t.State != prev.State || t.Retransmits != prev.Retransmits ||
		t.TotalRetrans != prev.TotalRetrans || t.Backoff != prev.Backoff ||
		t.RTOus != prev.RTOus || t.Unacked != prev.Unacked || t.Probes != prev.Probes
}

// changedFlooding is Changed for a sender that keeps the pipe full, where
// the unacknowledged count and the RTO move with every ACK: it reports a
// change of state, retransmits, total_retrans, backoff or probes, of
// unacked to or from zero, or of the RTO by a factor of 1.5 (a backoff's
// doubling, not RTT noise).
func (t TCPInfo) changedFlooding(prev TCPInfo) bool {
	return t.State != prev.State || t.Retransmits != prev.Retransmits ||
		t.TotalRetrans != prev.TotalRetrans || t.Backoff != prev.Backoff || t.Probes != prev.Probes ||
		(t.Unacked == 0) != (prev.Unacked == 0) ||
		2*uint64(t.RTOus) >= 3*uint64(prev.RTOus) || 3*uint64(t.RTOus) <= 2*uint64(prev.RTOus)
}

// ReadTCPInfo reads TCP_INFO from the socket behind rc.
func ReadTCPInfo(rc syscall.RawConn) (TCPInfo, error) {
	var ti *unix.TCPInfo
	var serr error
	err := rc.Control(func(fd uintptr) {
		ti, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if err != nil {
		return TCPInfo{}, fmt.Errorf("tcp_info: %w", err)
	}
	if serr != nil {
		return TCPInfo{}, fmt.Errorf("getsockopt TCP_INFO: %w", serr)
	}
	return DecodeTCPInfo(ti), nil
}
