package probes

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// CaptureName is the argv[0] basename under which the multi-call binary runs CaptureMain.
const CaptureName = "hostlab-capture"

// FrameRecord is one "frame" line of hostlab-capture: a frame on the
// interface as the guest kernel's packet taps saw it, with the kernel's own
// receive or transmit stamp.
type FrameRecord struct {
	V      int    `json:"v"`       // schema version, 1
	Ev     string `json:"ev"`      // "frame"
	MonoNS int64  `json:"mono_ns"` // CLOCK_MONOTONIC when the line was written
	RealNS int64  `json:"real_ns"` // CLOCK_REALTIME when the line was written
	// StampNS is the kernel's CLOCK_REALTIME stamp of the frame
	// (SO_TIMESTAMPNS): when it was handed to the driver or received.
	StampNS int64 `json:"stamp_ns"`
	// Out is true for a frame the guest sent.
	Out bool `json:"out"`
	// Len is the frame's length; Data its first bytes (the headers).
	Len  int    `json:"len"`
	Data []byte `json:"data"`
}

// captureSnap is how many bytes of each frame are kept: Ethernet, IPv4 and
// TCP headers with options, or an ICMP error with the header it quotes.
const captureSnap = 160

// CaptureMain is hostlab-capture: it captures every frame on the interface
// holding --addr with an AF_PACKET socket and writes one JSON line per frame
// until SIGTERM or SIGINT (exit 0); 1 when the socket or stdout fails, 2 on
// bad flags.
func CaptureMain(args []string) int {
	fs := flag.NewFlagSet(CaptureName, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	addr := fs.String("addr", "", "capture on the interface that has this IPv4 address")
	if err := fs.Parse(args); err != nil || *addr == "" || fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "usage: %s --addr IPV4\n", CaptureName)
		return 2
	}
	ifi, err := interfaceWith(*addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", CaptureName, err)
		return 2
	}
	var stop atomic.Bool
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		stop.Store(true)
	}()
	if err := capture(ifi.Index, os.Stdout, &stop); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", CaptureName, err)
		return 1
	}
	return 0
}

// interfaceWith finds the interface that has the IPv4 address a.
func interfaceWith(a string) (*net.Interface, error) {
	want, err := netip.ParseAddr(a)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: %w", a, err)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifs {
		addrs, _ := ifs[i].Addrs()
		for _, ad := range addrs {
			if p, err := netip.ParsePrefix(ad.String()); err == nil && p.Addr() == want {
				return &ifs[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no interface has address %s", a)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// capture reads frames from the interface until stop is set.
func capture(ifindex int, out io.Writer, stop *atomic.Bool) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fmt.Errorf("bind packet socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	enc := json.NewEncoder(out)
	real, mono := clockNow()
	if err := enc.Encode(statusRecord{V: 1, Ev: "start", MonoNS: mono, RealNS: real, PID: os.Getpid(), Args: os.Args}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	for !stop.Load() {
		n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_TRUNC)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("recvmsg: %w", err)
		}
		rec := FrameRecord{V: 1, Ev: "frame", Len: n, StampNS: stampOf(oob[:oobn])}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			rec.Out = ll.Pkttype == unix.PACKET_OUTGOING
		}
		rec.Data = append([]byte(nil), buf[:min(n, captureSnap, len(buf))]...)
		rec.RealNS, rec.MonoNS = clockNow()
		if err := enc.Encode(rec); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

// stampOf reads the SCM_TIMESTAMPNS control message; 0 if absent.
func stampOf(oob []byte) int64 {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return sec*1e9 + nsec
		}
	}
	return 0
}
