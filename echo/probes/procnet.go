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
	"time"
)

// userHZ is the clock tick of /proc/net/tcp's "when" column (USER_HZ, 100
// on every architecture hostlab's guests run).
const userHZ = 100

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
	s.Timer, s.TimerLeft = Timer(tr), time.Duration(when)*time.Second/userHZ
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
