package probes

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a TCP state as numbered in include/net/tcp_states.h.
type State uint8

// The TCP states of include/net/tcp_states.h.
const (
	StateEstablished State = 0x01 // ESTABLISHED
	StateSynSent     State = 0x02 // SYN_SENT
	StateSynRecv     State = 0x03 // SYN_RECV
	StateFinWait1    State = 0x04 // FIN_WAIT1
	StateFinWait2    State = 0x05 // FIN_WAIT2
	StateTimeWait    State = 0x06 // TIME_WAIT
	StateClose       State = 0x07 // CLOSE
	StateCloseWait   State = 0x08 // CLOSE_WAIT
	StateLastAck     State = 0x09 // LAST_ACK
	StateListen      State = 0x0A // LISTEN
	StateClosing     State = 0x0B // CLOSING
	StateNewSynRecv  State = 0x0C // NEW_SYN_RECV
)

var stateNames = [...]string{
	StateEstablished: "ESTABLISHED",
	StateSynSent:     "SYN_SENT",
	StateSynRecv:     "SYN_RECV",
	StateFinWait1:    "FIN_WAIT1",
	StateFinWait2:    "FIN_WAIT2",
	StateTimeWait:    "TIME_WAIT",
	StateClose:       "CLOSE",
	StateCloseWait:   "CLOSE_WAIT",
	StateLastAck:     "LAST_ACK",
	StateListen:      "LISTEN",
	StateClosing:     "CLOSING",
	StateNewSynRecv:  "NEW_SYN_RECV",
}

// String returns the kernel's name of the state, or UNKNOWN_XX.
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("UNKNOWN_%02X", uint8(s))
}

// Timer is which timer of the socket is pending, as numbered in both
// /proc/net/tcp's "tr" column and inet_diag_msg's idiag_timer.
type Timer uint8

// The timer codes of /proc/net/tcp and inet_diag.
const (
	TimerOff       Timer = 0 // no timer pending
	TimerOn        Timer = 1 // retransmission, loss probe or reordering timer
	TimerKeepalive Timer = 2 // sk_timer: keepalive, or an orphan's FIN_WAIT2 timeout
	TimerTimeWait  Timer = 3 // TIME_WAIT (or orphaned FIN_WAIT2) timer
	TimerProbe     Timer = 4 // zero window probe timer
)

var timerNames = [...]string{"off", "on", "keepalive", "timewait", "probe"}

// String returns the timer's name as netstat -o prints it.
func (t Timer) String() string {
	if int(t) < len(timerNames) {
		return timerNames[t]
	}
	return fmt.Sprintf("unknown-%d", uint8(t))
}

// Socket is one TCP socket as a sock_diag dump or a line of /proc/net/tcp
// or /proc/net/tcp6 shows it.
type Socket struct {
	// Local is the local address and port.
	Local netip.AddrPort
	// Peer is the remote address and port (unspecified:0 for a listener).
	Peer netip.AddrPort
	// State is the TCP state.
	State State
	// TxQueue is unacknowledged bytes sent, or a listener's backlog limit.
	TxQueue uint32
	// RxQueue is bytes received and not yet read, or a listener's accept queue.
	RxQueue uint32
	// Timer is the pending timer.
	Timer Timer
	// TimerLeft is the time until the timer fires (/proc/net/tcp counts
	// it in USER_HZ ticks, sock_diag in milliseconds).
	TimerLeft time.Duration
	// Retransmits is icsk_retransmits: consecutive retransmission timeouts
	// ("retrnsmt" in /proc/net/tcp).
	Retransmits uint32
	// UID is the socket owner's user id.
	UID uint32
	// Probes is icsk_probes_out: unanswered keepalive or zero window probes
	// ("timeout" in /proc/net/tcp).
	Probes uint32
	// Inode is the socket's inode, 0 for TIME_WAIT and NEW_SYN_RECV entries.
	Inode uint64
	// Info is the socket's struct tcp_info; sock_diag only, nil for
	// TIME_WAIT and SYN_RECV entries.
	Info *TCPInfo
	// Mem is the socket's memory accounting (INET_DIAG_SKMEMINFO);
	// sock_diag only, nil for TIME_WAIT and SYN_RECV entries.
	Mem *MemInfo
}
