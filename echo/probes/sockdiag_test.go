package probes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runBytecode runs inet_diag bytecode on a socket's ports as the kernel's
// inet_diag_bc_run does (for the ops portFilter uses), after the checks of
// inet_diag_bc_audit, and reports whether the socket is accepted.
func runBytecode(t *testing.T, bc []byte, sport, dport uint16) bool {
	t.Helper()
	ne := binary.NativeEndian
	// validCC: a "no" target must be reachable along the "yes" chain.
	validCC := func(cc int) bool {
		for pc, n := 0, len(bc); n >= 0; {
			if cc > n {
				return false
			}
			if cc == n {
				return true
			}
			yes := int(bc[pc+1])
			if yes < 4 || yes&3 != 0 {
				return false
			}
			pc, n = pc+yes, n-yes
		}
		return false
	}
	for pc, n := 0, len(bc); n > 0; {
		code, yes, no := bc[pc], int(bc[pc+1]), int(ne.Uint16(bc[pc+2:]))
		minLen := sizeofBcOp
		switch code {
		case inetDiagBcSEq, inetDiagBcDEq:
			if minLen += sizeofBcOp; n < minLen {
				t.Fatalf("audit: port comparison at %d lacks its operand", pc)
			}
		case inetDiagBcJmp:
		default:
			t.Fatalf("audit: op %d at %d", code, pc)
		}
		if no < minLen || no > n+4 || no&3 != 0 || (no < n && !validCC(n-no)) {
			t.Fatalf("audit: op at %d: no %d (length left %d)", pc, no, n)
		}
		if yes < minLen || yes > n+4 || yes&3 != 0 {
			t.Fatalf("audit: op at %d: yes %d (length left %d)", pc, yes, n)
		}
		pc, n = pc+yes, n-yes
	}
	n := len(bc)
	for pc := 0; n > 0; {
		code, yes, no := bc[pc], int(bc[pc+1]), int(ne.Uint16(bc[pc+2:]))
		ok := true
		switch code {
		case inetDiagBcJmp:
			ok = false
		case inetDiagBcSEq:
			ok = sport == ne.Uint16(bc[pc+6:])
		case inetDiagBcDEq:
			ok = dport == ne.Uint16(bc[pc+6:])
		}
		if !ok {
			yes = no
		}
		pc, n = pc+yes, n-yes
	}
	return n == 0
}

func TestPortFilter(t *testing.T) {
	bc := portFilter(9998)
	for _, tt := range []struct {
		sport, dport uint16
		want         bool
	}{{9998, 0, true}, {9998, 40000, true}, {40000, 9998, true}, {9998, 9998, true}, {22, 40000, false}, {0, 0, false}, {9999, 9997, false}} {
		if got := runBytecode(t, bc, tt.sport, tt.dport); got != tt.want {
			t.Errorf("sport %d dport %d: accepted %v, want %v", tt.sport, tt.dport, got, tt.want)
		}
	}
}

func TestDiagRequest(t *testing.T) {
	b := diagRequest(unix.AF_INET6, 9998, 7)
	ne := binary.NativeEndian
	bc := portFilter(9998)
	if want := sizeofNlMsghdr + sizeofInetDiagReqV2 + 4 + len(bc); len(b) != want || int(ne.Uint32(b)) != want {
		t.Fatalf("request of %d bytes, header says %d; want %d", len(b), ne.Uint32(b), want)
	}
	if typ, flags, seq := ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:]); typ != unix.SOCK_DIAG_BY_FAMILY ||
		flags != unix.NLM_F_REQUEST|unix.NLM_F_DUMP || seq != 7 {
		t.Errorf("header type %d flags %#x seq %d", typ, flags, seq)
	}
	req := b[sizeofNlMsghdr:]
	if req[0] != unix.AF_INET6 || req[1] != unix.IPPROTO_TCP || req[2] != 1<<(inetDiagInfo-1)|1<<(inetDiagSkmeminfo-1) || ne.Uint32(req[4:]) != 0x1fff {
		t.Errorf("inet_diag_req_v2 family %d protocol %d ext %#x states %#x", req[0], req[1], req[2], ne.Uint32(req[4:]))
	}
	attr := req[sizeofInetDiagReqV2:]
	if int(ne.Uint16(attr)) != 4+len(bc) || ne.Uint16(attr[2:]) != inetDiagReqBytecode || string(attr[4:]) != string(bc) {
		t.Errorf("bytecode attribute %x, want length %d type %d and %x", attr, 4+len(bc), inetDiagReqBytecode, bc)
	}
}

// diagMsg builds a struct inet_diag_msg as the kernel sends it.
type diagMsg struct {
	family, state, timer, retrans uint8
	local, peer                   netip.AddrPort
	expires, rqueue, wqueue       uint32
	uid, inode                    uint32
}

func (m diagMsg) bytes() []byte {
	ne := binary.NativeEndian
	b := make([]byte, sizeofInetDiagMsg)
	b[0], b[1], b[2], b[3] = m.family, m.state, m.timer, m.retrans
	binary.BigEndian.PutUint16(b[4:], m.local.Port())
	binary.BigEndian.PutUint16(b[6:], m.peer.Port())
	if m.family == unix.AF_INET {
		copy(b[8:], m.local.Addr().AsSlice())
		copy(b[24:], m.peer.Addr().AsSlice())
	} else {
		l, p := m.local.Addr().As16(), m.peer.Addr().As16()
		copy(b[8:], l[:])
		copy(b[24:], p[:])
	}
	ne.PutUint32(b[40:], 2)         // idiag_if
	ne.PutUint64(b[44:], 0xc0ffee)  // cookie
	ne.PutUint32(b[52:], m.expires) // ms
	ne.PutUint32(b[56:], m.rqueue)  // unread
	ne.PutUint32(b[60:], m.wqueue)  // unacknowledged
	ne.PutUint32(b[64:], m.uid)     // owner
	ne.PutUint32(b[68:], m.inode)   // inode
	return b
}

// attr appends a netlink attribute, padded to 4 bytes.
func attr(b []byte, typ uint16, payload []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	return append(b, make([]byte, align4(len(payload))-len(payload))...)
}

// nlmsg wraps a payload in a netlink message header.
func nlmsg(typ uint16, flags uint16, seq uint32, payload []byte) []byte {
	ne := binary.NativeEndian
	b := ne.AppendUint32(nil, uint32(sizeofNlMsghdr+len(payload)))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, flags)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 4242)
	b = append(b, payload...)
	return append(b, make([]byte, align4(len(payload))-len(payload))...)
}

func memFixture() []byte {
	b := make([]byte, 4*unix.SK_MEMINFO_VARS)
	binary.NativeEndian.PutUint32(b[4*unix.SK_MEMINFO_WMEM_QUEUED:], 2304)
	binary.NativeEndian.PutUint32(b[4*unix.SK_MEMINFO_SNDBUF:], 87040)
	return b
}

// The fixtures: an IPv4 connection retransmitting (6.1's tcp_info, memory,
// and the unconditional INET_DIAG_SHUTDOWN of one byte), a dual-stack
// connection in keepalive, and IPv4 and IPv6 TIME_WAIT entries, which carry
// no attributes.
func TestParseInetDiagMsg(t *testing.T) {
	ap := netip.MustParseAddrPort
	const inetDiagShutdown, inetDiagCong = 8, 4
	retrans := diagMsg{family: unix.AF_INET, state: uint8(StateEstablished), timer: uint8(TimerOn), retrans: 3,
		local: ap("192.168.77.1:40000"), peer: ap("192.168.77.2:9998"), expires: 1632, wqueue: 6, uid: 1000, inode: 91001}.bytes()
	retrans = attr(retrans, inetDiagShutdown, []byte{2})
	retrans = attr(retrans, inetDiagInfo, tcpInfoFixture(tcpInfoLen61))
	retrans = attr(retrans, inetDiagCong, []byte("cubic\x00"))
	retrans = attr(retrans, inetDiagSkmeminfo|0x8000, memFixture()) // a flag bit in the type is masked
	keepalive := diagMsg{family: unix.AF_INET6, state: uint8(StateEstablished), timer: uint8(TimerKeepalive), retrans: 2,
		local: ap("[::ffff:192.168.77.2]:9998"), peer: ap("[::ffff:192.168.77.1]:40000"), expires: 75000, inode: 91002}.bytes()
	tw4 := diagMsg{family: unix.AF_INET, state: uint8(StateTimeWait), timer: uint8(TimerTimeWait),
		local: ap("127.0.0.1:46148"), peer: ap("127.0.0.1:9998"), expires: 58000}.bytes()
	tw6 := diagMsg{family: unix.AF_INET6, state: uint8(StateFinWait2), timer: uint8(TimerTimeWait),
		local: ap("[2001:db8::77:2]:9998"), peer: ap("[fe80::1]:54321"), expires: 59999}.bytes()

	s, err := ParseInetDiagMsg(retrans)
	if err != nil {
		t.Fatal(err)
	}
	if s.Info == nil || s.Mem == nil {
		t.Fatalf("retransmitting: tcp_info %v, skmem %v; want both", s.Info, s.Mem)
	}
	if *s.Info != *ParseTCPInfo(tcpInfoFixture(tcpInfoLen61)) || s.Info.Len != tcpInfoLen61 {
		t.Errorf("retransmitting: tcp_info %+v", *s.Info)
	}
	if s.Mem.WmemQueued != 2304 || s.Mem.Sndbuf != 87040 {
		t.Errorf("retransmitting: skmem %+v", *s.Mem)
	}
	s.Info, s.Mem = nil, nil
	want := Socket{Local: ap("192.168.77.1:40000"), Peer: ap("192.168.77.2:9998"), State: StateEstablished, TxQueue: 6,
		Timer: TimerOn, TimerLeft: 1632 * time.Millisecond, Retransmits: 3, UID: 1000, Inode: 91001}
	if s != want {
		t.Errorf("retransmitting:\n got %+v\nwant %+v", s, want)
	}
	for _, tt := range []struct {
		name string
		msg  []byte
		want Socket
	}{
		{"keepalive", keepalive, Socket{Local: ap("[::ffff:192.168.77.2]:9998"), Peer: ap("[::ffff:192.168.77.1]:40000"),
			State: StateEstablished, Timer: TimerKeepalive, TimerLeft: 75 * time.Second, Probes: 2, Inode: 91002}},
		{"IPv4 TIME_WAIT", tw4, Socket{Local: ap("127.0.0.1:46148"), Peer: ap("127.0.0.1:9998"), State: StateTimeWait,
			Timer: TimerTimeWait, TimerLeft: 58 * time.Second}},
		{"IPv6 FIN_WAIT2 timewait entry", tw6, Socket{Local: ap("[2001:db8::77:2]:9998"), Peer: ap("[fe80::1]:54321"),
			State: StateFinWait2, Timer: TimerTimeWait, TimerLeft: 59999 * time.Millisecond}},
	} {
		if s, err := ParseInetDiagMsg(tt.msg); err != nil || s != tt.want {
			t.Errorf("%s: %v\n got %+v\nwant %+v", tt.name, err, s, tt.want)
		}
	}

	bad := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), retrans...)) }
	for name, msg := range map[string][]byte{
		"short message":        retrans[:sizeofInetDiagMsg-1],
		"family AF_UNIX":       bad(func(b []byte) []byte { b[0] = unix.AF_UNIX; return b }),
		"attribute header cut": retrans[:sizeofInetDiagMsg+2],
		"attribute past end":   retrans[:sizeofInetDiagMsg+8+10],
		"attribute length 2":   bad(func(b []byte) []byte { binary.NativeEndian.PutUint16(b[sizeofInetDiagMsg:], 2); return b }),
	} {
		if _, err := ParseInetDiagMsg(msg); !errors.Is(err, errDiagMessage) {
			t.Errorf("%s: %v, want errDiagMessage", name, err)
		}
	}
}

func TestParseDiagReply(t *testing.T) {
	ap := netip.MustParseAddrPort
	one := diagMsg{family: unix.AF_INET, state: uint8(StateListen), local: ap("0.0.0.0:9998"), peer: ap("0.0.0.0:0"), wqueue: 4096, inode: 1}.bytes()
	two := diagMsg{family: unix.AF_INET, state: uint8(StateEstablished), local: ap("10.0.0.1:9998"), peer: ap("10.0.0.2:1"), inode: 2}.bytes()
	stale := diagMsg{family: unix.AF_INET, state: uint8(StateClose), local: ap("10.0.0.9:9998"), peer: ap("10.0.0.9:9"), inode: 9}.bytes()
	errno := func(e int32) []byte {
		return binary.NativeEndian.AppendUint32(nil, uint32(-e))
	}
	const seq = 5
	multi := unix.NLM_F_MULTI
	var dgram []byte
	dgram = append(dgram, nlmsg(unix.SOCK_DIAG_BY_FAMILY, uint16(multi), seq-1, stale)...)
	dgram = append(dgram, nlmsg(unix.SOCK_DIAG_BY_FAMILY, uint16(multi), seq, one)...)
	dgram = append(dgram, nlmsg(unix.SOCK_DIAG_BY_FAMILY, uint16(multi), seq, two)...)

	socks, done, err := parseDiagReply(dgram, seq)
	if err != nil || done || len(socks) != 2 || socks[0].Inode != 1 || socks[1].Inode != 2 || socks[0].TxQueue != 4096 {
		t.Errorf("first datagram: %+v done %v err %v; want inodes 1, 2 and not done", socks, done, err)
	}
	last := append(nlmsg(unix.SOCK_DIAG_BY_FAMILY, uint16(multi), seq, two), nlmsg(unix.NLMSG_DONE, uint16(multi), seq, errno(0))...)
	last = append(last, nlmsg(unix.SOCK_DIAG_BY_FAMILY, uint16(multi), seq, one)...) // after DONE: ignored
	if socks, done, err := parseDiagReply(last, seq); err != nil || !done || len(socks) != 1 || socks[0].Inode != 2 {
		t.Errorf("last datagram: %+v done %v err %v; want inode 2 and done", socks, done, err)
	}
	errMsg := nlmsg(unix.NLMSG_ERROR, 0, seq, append(errno(int32(unix.ENOENT)), make([]byte, sizeofNlMsghdr)...))
	if _, _, err := parseDiagReply(errMsg, seq); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("NLMSG_ERROR ENOENT: %v", err)
	}
	if _, done, err := parseDiagReply(nlmsg(unix.NLMSG_ERROR, 0, seq, errno(0)), seq); err != nil || !done {
		t.Errorf("acknowledgement: done %v err %v", done, err)
	}
	if _, done, err := parseDiagReply(nlmsg(unix.NLMSG_DONE, 0, seq+1, errno(0)), seq); err != nil || done {
		t.Errorf("another dump's DONE: done %v err %v; want neither", done, err)
	}
	for name, b := range map[string][]byte{
		"short header":      dgram[:10],
		"length past end":   dgram[:len(dgram)-4],
		"length below 16":   binary.NativeEndian.AppendUint32(nil, 8),
		"short error":       nlmsg(unix.NLMSG_ERROR, 0, seq, []byte{1}),
		"bad inet_diag_msg": nlmsg(unix.SOCK_DIAG_BY_FAMILY, 0, seq, one[:20]),
	} {
		if _, _, err := parseDiagReply(b, seq); !errors.Is(err, errDiagMessage) {
			t.Errorf("%s: %v, want errDiagMessage", name, err)
		}
	}
}

func TestPickSource(t *testing.T) {
	sock := []Socket{{Inode: 7}}
	diagCalls := 0
	diag := func(port uint16) ([]Socket, error) {
		diagCalls++
		if port != 9998 {
			return nil, fmt.Errorf("port %d", port)
		}
		return sock, nil
	}
	procnet := func() ([]Socket, error) { return nil, errors.New("procnet read") }
	read, src := pickSource(9998, diag, procnet)
	if src.Ev != "source" || src.Source != SourceSockDiag || src.Err != "" {
		t.Errorf("working sock_diag: source line %+v", src)
	}
	if got, err := read(); err != nil || len(got) != 1 || diagCalls != 2 {
		t.Errorf("sock_diag reader: %v, %v after %d dumps", got, err, diagCalls)
	}
	read, src = pickSource(1, diag, procnet)
	if src.Source != SourceProcNet || src.Err != "port 1" {
		t.Errorf("failing sock_diag: source line %+v", src)
	}
	if _, err := read(); err == nil || err.Error() != "procnet read" {
		t.Errorf("fallback reader: %v, want the procnet reader", err)
	}
}

// requireSockDiag skips a test where the kernel has no TCP sock_diag (no
// tcp_diag module, no netlink), outside CI; in CI it fails.
func requireSockDiag(t *testing.T) {
	t.Helper()
	_, err := dumpSockDiag(1)
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("sock_diag unavailable in CI: %v", err)
	}
	t.Skipf("sock_diag unavailable: %v", err)
}

// socketInode is the inode of the socket behind c, from /proc/self/fd.
func socketInode(t *testing.T, c net.Conn) uint64 {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var link string
	var lerr error
	rc.Control(func(fd uintptr) { link, lerr = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)) })
	var ino uint64
	if _, err := fmt.Sscanf(link, "socket:[%d]", &ino); lerr != nil || err != nil {
		t.Fatalf("fd link %q: %v %v", link, lerr, err)
	}
	return ino
}

// TestSockDiagLive dumps a loopback connection of its own, over IPv4 and
// IPv6: both ends ESTABLISHED with the right inode and a tcp_info (RTO
// set), no socket of another port; after the client closes, FIN_WAIT2 (or
// TIME_WAIT) and CLOSE_WAIT.
func TestSockDiagLive(t *testing.T) {
	requireSockDiag(t)
	for _, tt := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(tt.network, func(t *testing.T) {
			ln, err := net.Listen(tt.network, tt.addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", tt.network, err)
			}
			defer ln.Close()
			other, err := net.Listen(tt.network, tt.addr) // a socket the filter must leave out
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			port := uint16(ln.Addr().(*net.TCPAddr).Port)
			client, err := net.Dial(tt.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			server, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()
			if _, err := client.Write([]byte("hello\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := server.Read(make([]byte, 6)); err != nil {
				t.Fatal(err)
			}
			cli, srv := netip.MustParseAddrPort(client.LocalAddr().String()), netip.MustParseAddrPort(server.LocalAddr().String())
			find := func(socks []Socket, local, peer netip.AddrPort) *Socket {
				for i := range socks {
					if socks[i].Local == local && socks[i].Peer == peer {
						return &socks[i]
					}
				}
				return nil
			}
			socks, err := dumpSockDiag(port)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range socks {
				if s.Local.Port() != port && s.Peer.Port() != port {
					t.Errorf("the port filter let through %v>%v", s.Local, s.Peer)
				}
			}
			for _, end := range []struct {
				name        string
				local, peer netip.AddrPort
				conn        net.Conn
			}{{"client", cli, srv, client}, {"server", srv, cli, server}} {
				s := find(socks, end.local, end.peer)
				switch {
				case s == nil:
					t.Fatalf("%s end %v>%v not in the dump %+v", end.name, end.local, end.peer, socks)
				case s.State != StateEstablished || s.Info == nil || s.Mem == nil:
					t.Fatalf("%s end: state %v tcp_info %v skmem %v; want ESTABLISHED with both", end.name, s.State, s.Info, s.Mem)
				case s.Info.Rto == 0 || s.Info.State != uint8(StateEstablished) || s.Info.Snd_mss == 0 || s.Info.Len < tcpInfoLen61:
					t.Errorf("%s end: tcp_info %+v", end.name, *s.Info)
				case s.Inode != socketInode(t, end.conn) || s.UID != uint32(os.Getuid()):
					t.Errorf("%s end: inode %d uid %d, want %d %d", end.name, s.Inode, s.UID, socketInode(t, end.conn), os.Getuid())
				}
				t.Logf("%s end: rto %d µs, rtt %d µs, tcp_info of %d bytes", end.name, s.Info.Rto, s.Info.Rtt, s.Info.Len)
			}

			// Close the client and watch the sampler report the change.
			smp := newSampler(port)
			smp.update(socks)
			client.Close()
			seen := map[string]SockRecord{} // "client" or "server" -> last record
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				socks, err := dumpSockDiag(port)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range smp.update(socks) {
					switch r.Local + ">" + r.Peer {
					case cli.String() + ">" + srv.String():
						seen["client"] = r
					case srv.String() + ">" + cli.String():
						seen["server"] = r
					}
				}
				c, s := seen["client"], seen["server"]
				if (c.State == "FIN_WAIT2" || c.State == "TIME_WAIT") && s.State == "CLOSE_WAIT" {
					if s.Info == nil || State(s.Info.State) != StateCloseWait || s.Info.Rto == 0 {
						t.Errorf("server end in CLOSE_WAIT: tcp_info %+v", s.Info)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the client closed: records %+v", seen)
				}
			}
		})
	}
}
