package probes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Layout and numbers of include/uapi/linux/inet_diag.h and netlink.h.
const (
	sizeofNlMsghdr       = 16 // struct nlmsghdr
	sizeofInetDiagReqV2  = 56 // struct inet_diag_req_v2
	sizeofInetDiagMsg    = 72 // struct inet_diag_msg
	sizeofBcOp           = 4  // struct inet_diag_bc_op
	inetDiagReqBytecode  = 1  // INET_DIAG_REQ_BYTECODE request attribute
	inetDiagInfo         = 2  // INET_DIAG_INFO: struct tcp_info
	inetDiagSkmeminfo    = 7  // INET_DIAG_SKMEMINFO: u32[SK_MEMINFO_VARS]
	inetDiagBcJmp        = 1  // INET_DIAG_BC_JMP
	inetDiagBcSEq        = 11 // INET_DIAG_BC_S_EQ: local port equals
	inetDiagBcDEq        = 12 // INET_DIAG_BC_D_EQ: remote port equals
	nlaTypeMask          = 0x3fff
	diagAllStates        = 1<<13 - 1 // every TCP state up to NEW_SYN_RECV
	diagRecvBufferSize   = 64 << 10  // above the kernel's 32 KiB dump chunks
	diagRecvTimeout      = 2 * time.Second
	diagExtensionsWanted = 1<<(inetDiagInfo-1) | 1<<(inetDiagSkmeminfo-1)
)

// errDiagMessage marks a malformed sock_diag reply.
var errDiagMessage = errors.New("malformed sock_diag message")

// portFilter is inet_diag bytecode for "local port is port or remote port
// is port", laid out as ss(8) compiles an "or": a failed first test jumps
// over itself and the JMP to the second; a passed one falls into the JMP,
// which skips the second; a failed second test jumps 4 bytes past the end,
// which rejects. Ports are in host byte order.
func portFilter(port uint16) []byte {
	b := make([]byte, 0, 7*sizeofBcOp)
	op := func(code uint8, yes uint8, no uint16) {
		b = append(b, code, yes)
		b = binary.NativeEndian.AppendUint16(b, no)
	}
	op(inetDiagBcSEq, 2*sizeofBcOp, 3*sizeofBcOp)
	op(0, 0, port)
	op(inetDiagBcJmp, sizeofBcOp, 3*sizeofBcOp)
	op(inetDiagBcDEq, 2*sizeofBcOp, 3*sizeofBcOp)
	op(0, 0, port)
	return b
}

// diagRequest builds a SOCK_DIAG_BY_FAMILY dump request for the TCP
// sockets of family (AF_INET or AF_INET6) in any state with port as local
// or remote port, asking for their tcp_info and memory accounting.
func diagRequest(family uint8, port uint16, seq uint32) []byte {
	filter := portFilter(port)
	attrLen := 4 + len(filter)
	n := sizeofNlMsghdr + sizeofInetDiagReqV2 + attrLen
	ne := binary.NativeEndian
	b := make([]byte, 0, n)
	b = ne.AppendUint32(b, uint32(n))
	b = ne.AppendUint16(b, unix.SOCK_DIAG_BY_FAMILY)
	b = ne.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0) // port id: the kernel fills it in
	// inet_diag_req_v2: family, protocol, ext, pad, states, then an
	// all-zero inet_diag_sockid (a dump matches on the bytecode).
	b = append(b, family, unix.IPPROTO_TCP, diagExtensionsWanted, 0)
	b = ne.AppendUint32(b, diagAllStates)
	b = append(b, make([]byte, sizeofInetDiagReqV2-8)...)
	b = ne.AppendUint16(b, uint16(attrLen))
	b = ne.AppendUint16(b, inetDiagReqBytecode)
	return append(b, filter...)
}

// ParseInetDiagMsg decodes one sock_diag reply payload: a struct
// inet_diag_msg and its attributes, of which INET_DIAG_INFO and
// INET_DIAG_SKMEMINFO are kept.
func ParseInetDiagMsg(b []byte) (Socket, error) {
	var s Socket
	if len(b) < sizeofInetDiagMsg {
		return s, fmt.Errorf("%w: inet_diag_msg of %d bytes, want %d", errDiagMessage, len(b), sizeofInetDiagMsg)
	}
	var local, peer netip.Addr
	switch b[0] {
	case unix.AF_INET:
		local, peer = netip.AddrFrom4([4]byte(b[8:12])), netip.AddrFrom4([4]byte(b[24:28]))
	case unix.AF_INET6:
		local, peer = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	default:
		return s, fmt.Errorf("%w: address family %d", errDiagMessage, b[0])
	}
	be, ne := binary.BigEndian, binary.NativeEndian
	s.Local = netip.AddrPortFrom(local, be.Uint16(b[4:]))
	s.Peer = netip.AddrPortFrom(peer, be.Uint16(b[6:]))
	s.State, s.Timer = State(b[1]), Timer(b[2])
	s.TimerLeft = time.Duration(ne.Uint32(b[52:])) * time.Millisecond
	s.RxQueue, s.TxQueue = ne.Uint32(b[56:]), ne.Uint32(b[60:])
	s.UID, s.Inode = ne.Uint32(b[64:]), uint64(ne.Uint32(b[68:]))
	// idiag_retrans is icsk_retransmits under the retransmission timer and
	// icsk_probes_out under the keepalive and zero window timers.
	switch s.Timer {
	case TimerOn:
		s.Retransmits = uint32(b[3])
	case TimerKeepalive, TimerProbe:
		s.Probes = uint32(b[3])
	}
	for a := b[sizeofInetDiagMsg:]; len(a) > 0; {
		if len(a) < 4 {
			return s, fmt.Errorf("%w: %d bytes of attribute header", errDiagMessage, len(a))
		}
		n := int(ne.Uint16(a))
		if n < 4 || n > len(a) {
			return s, fmt.Errorf("%w: attribute length %d of %d bytes left", errDiagMessage, n, len(a))
		}
		switch ne.Uint16(a[2:]) & nlaTypeMask {
		case inetDiagInfo:
			s.Info = ParseTCPInfo(a[4:n])
			s.Retransmits, s.Probes = uint32(s.Info.Retransmits), uint32(s.Info.Probes)
		case inetDiagSkmeminfo:
			s.Mem = ParseMemInfo(a[4:n])
		}
		a = a[min(align4(n), len(a)):]
	}
	return s, nil
}

// align4 rounds n up to netlink's 4-byte alignment.
func align4(n int) int { return (n + 3) &^ 3 }

// parseDiagReply decodes one datagram of a dump's reply. It returns the
// sockets of the messages answering seq (others, left over from an earlier
// dump, are skipped) and whether NLMSG_DONE ended the dump; an NLMSG_ERROR
// becomes its errno.
func parseDiagReply(b []byte, seq uint32) (socks []Socket, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < sizeofNlMsghdr {
			return nil, false, fmt.Errorf("%w: %d bytes of message header", errDiagMessage, len(b))
		}
		n := int(ne.Uint32(b))
		if n < sizeofNlMsghdr || n > len(b) {
			return nil, false, fmt.Errorf("%w: message length %d of %d bytes left", errDiagMessage, n, len(b))
		}
		typ, payload := ne.Uint16(b[4:]), b[sizeofNlMsghdr:n]
		mine := ne.Uint32(b[8:]) == seq
		b = b[min(align4(n), len(b)):]
		if !mine {
			continue
		}
		switch typ {
		case unix.NLMSG_DONE:
			return socks, true, nil
		case unix.NLMSG_ERROR:
			if len(payload) < 4 {
				return nil, false, fmt.Errorf("%w: short NLMSG_ERROR", errDiagMessage)
			}
			if e := int32(ne.Uint32(payload)); e != 0 {
				return nil, false, syscall.Errno(-e)
			}
			return socks, true, nil // an acknowledgement
		case unix.SOCK_DIAG_BY_FAMILY:
			s, err := ParseInetDiagMsg(payload)
			if err != nil {
				return nil, false, err
			}
			socks = append(socks, s)
		}
	}
	return socks, false, nil
}

// diagSeq numbers the dump requests of this process.
var diagSeq atomic.Uint32

// dumpSockDiag returns the IPv4 and IPv6 TCP sockets with port as local or
// remote port, each with its tcp_info where the kernel has one, from a
// NETLINK_SOCK_DIAG dump (the kernel's tcp_diag; no privilege needed).
func dumpSockDiag(port uint16) ([]Socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(diagRecvTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("sock_diag receive timeout: %w", err)
	}
	buf := make([]byte, diagRecvBufferSize)
	var all []Socket
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		seq := diagSeq.Add(1)
		if err := unix.Sendto(fd, diagRequest(family, port, seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return nil, fmt.Errorf("send sock_diag request: %w", err)
		}
		for done := false; !done; {
			n, _, flags, _, err := unix.Recvmsg(fd, buf, nil, 0)
			if err != nil {
				return nil, fmt.Errorf("receive sock_diag dump: %w", err)
			}
			if flags&unix.MSG_TRUNC != 0 {
				return nil, fmt.Errorf("receive sock_diag dump: %w: datagram larger than %d bytes", errDiagMessage, len(buf))
			}
			var socks []Socket
			if socks, done, err = parseDiagReply(buf[:n], seq); err != nil {
				return nil, fmt.Errorf("sock_diag dump of family %d: %w", family, err)
			}
			all = append(all, socks...)
		}
	}
	return all, nil
}
