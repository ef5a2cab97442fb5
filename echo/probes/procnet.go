package probes

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
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

// Timer is the "tr" column: which timer of the socket is pending.
type Timer uint8

// The timer codes of /proc/net/tcp's "tr" column.
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

// Socket is one line of /proc/net/tcp or /proc/net/tcp6.
type Socket struct {
	// Local is the local address and port.
	Local netip.AddrPort
	// Peer is the remote address and port (unspecified:0 for a listener).
	Peer netip.AddrPort
	// State is the TCP state ("st").
	State State
	// TxQueue is unacknowledged bytes sent, or a listener's backlog limit.
	TxQueue uint32
	// RxQueue is bytes received and not yet read, or a listener's accept queue.
	RxQueue uint32
	// Timer is the pending timer ("tr").
	Timer Timer
	// TimerTicks is the time until the timer fires, in clock ticks (USER_HZ).
	TimerTicks uint64
	// Retransmits is the "retrnsmt" column (icsk_retransmits).
	Retransmits uint32
	// UID is the socket owner's user id.
	UID uint32
	// Probes is the "timeout" column: unanswered keepalive or zero window
	// probes (icsk_probes_out).
	Probes uint32
	// Inode is the socket's inode, 0 for TIME_WAIT and NEW_SYN_RECV entries.
	Inode uint64
}

// errSyntax marks a malformed /proc/net/tcp line.
var errSyntax = errors.New("malformed line")

// ParseProcNetTCP parses the contents of /proc/net/tcp or /proc/net/tcp6,
// skipping the header line.
func ParseProcNetTCP(r io.Reader) ([]Socket, error) {
	var socks []Socket
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "sl" {
			continue
		}
		s, err := parseLine(f)
		if err != nil {
			return nil, fmt.Errorf("parse proc net tcp line %d %q: %w", n, strings.TrimSpace(line), err)
		}
		socks = append(socks, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read proc net tcp: %w", err)
	}
	return socks, nil
}

// parseLine parses the fields of one socket line: sl, local, remote, st,
// tx:rx, tr:when, retrnsmt, uid, timeout, inode and more.
func parseLine(f []string) (Socket, error) {
	var s Socket
	if len(f) < 10 {
		return s, fmt.Errorf("%w: %d fields, want at least 10", errSyntax, len(f))
	}
	var err error
	if s.Local, err = parseAddrPort(f[1]); err != nil {
		return s, fmt.Errorf("local address: %w", err)
	}
	if s.Peer, err = parseAddrPort(f[2]); err != nil {
		return s, fmt.Errorf("remote address: %w", err)
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return s, fmt.Errorf("state: %w", err)
	}
	s.State = State(st)
	tx, rx, err := hexPair(f[4], 32, 32)
	if err != nil {
		return s, fmt.Errorf("queues: %w", err)
	}
	s.TxQueue, s.RxQueue = uint32(tx), uint32(rx)
	tr, when, err := hexPair(f[5], 8, 64)
	if err != nil {
		return s, fmt.Errorf("timer: %w", err)
	}
	s.Timer, s.TimerTicks = Timer(tr), when
	retr, err := strconv.ParseUint(f[6], 16, 32)
	if err != nil {
		return s, fmt.Errorf("retrnsmt: %w", err)
	}
	s.Retransmits = uint32(retr)
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return s, fmt.Errorf("uid: %w", err)
	}
	s.UID = uint32(uid)
	probes, err := strconv.ParseUint(f[8], 10, 32)
	if err != nil {
		return s, fmt.Errorf("timeout: %w", err)
	}
	s.Probes = uint32(probes)
	if s.Inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
		return s, fmt.Errorf("inode: %w", err)
	}
	return s, nil
}

// hexPair parses "AAAA:BBBB", two hexadecimal numbers of the given bit sizes.
func hexPair(s string, abits, bbits int) (uint64, uint64, error) {
	as, bs, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%w: %q is not a:b", errSyntax, s)
	}
	a, err := strconv.ParseUint(as, 16, abits)
	if err != nil {
		return 0, 0, err
	}
	b, err := strconv.ParseUint(bs, 16, bbits)
	if err != nil {
		return 0, 0, err
	}
	return a, b, nil
}

// parseAddrPort parses the kernel's "ADDR:PORT". ADDR is the address's
// 32-bit words, each printed as a host-order (little-endian on the guests
// hostlab runs) number: one word for IPv4, four for IPv6. PORT is the port
// as a number.
func parseAddrPort(s string) (netip.AddrPort, error) {
	as, ps, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%w: %q is not ADDR:PORT", errSyntax, s)
	}
	port, err := strconv.ParseUint(ps, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", ps, err)
	}
	var b [16]byte
	if len(as) != 8 && len(as) != 32 {
		return netip.AddrPort{}, fmt.Errorf("%w: address %q has %d hex digits, want 8 or 32", errSyntax, as, len(as))
	}
	for i := 0; i < len(as)/8; i++ {
		w, err := strconv.ParseUint(as[8*i:8*i+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", as, err)
		}
		binary.LittleEndian.PutUint32(b[4*i:], uint32(w))
	}
	var addr netip.Addr
	if len(as) == 8 {
		addr = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		addr = netip.AddrFrom16(b)
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
