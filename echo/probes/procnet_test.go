package probes

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// The fixtures are /proc/net/tcp and /proc/net/tcp6 captured on Linux 6.18
// (loopback listeners, an established pair, TIME_WAIT, orphaned FIN_WAIT2 and
// CLOSE_WAIT entries); the 192.168.77.x lines of tcp and the last line of
// tcp6 are captured lines edited to carry lab addresses, queues and timers.
func TestParseProcNetTCP(t *testing.T) {
	ap := netip.MustParseAddrPort
	const tick = 10 * time.Millisecond // USER_HZ 100
	tests := []struct {
		file string
		want []Socket
	}{
		{"testdata/tcp", []Socket{
			{Local: ap("127.0.0.1:9997"), Peer: ap("0.0.0.0:0"), State: StateListen, Inode: 90740},
			{Local: ap("127.0.0.1:46148"), Peer: ap("127.0.0.1:9997"), State: StateTimeWait, Timer: TimerTimeWait, TimerLeft: 0x16CE * tick},
			{Local: ap("127.0.0.1:57642"), Peer: ap("127.0.0.1:9998"), State: StateEstablished, Inode: 90736},
			{Local: ap("192.168.77.1:40000"), Peer: ap("192.168.77.2:9998"), State: StateEstablished, TxQueue: 5,
				Timer: TimerOn, TimerLeft: 0x32 * tick, Retransmits: 3, UID: 1000, Inode: 91001},
			{Local: ap("192.168.77.1:40002"), Peer: ap("192.168.77.2:9998"), State: StateSynSent, TxQueue: 1,
				Timer: TimerOn, TimerLeft: 0x12C * tick, Retransmits: 2, Inode: 91002},
			{Local: ap("192.168.77.1:40004"), Peer: ap("192.168.77.2:9998"), State: StateEstablished,
				Timer: TimerKeepalive, TimerLeft: 0x1B58 * tick, Probes: 2, Inode: 91003},
		}},
		{"testdata/tcp6", []Socket{
			{Local: ap("[::]:9998"), Peer: ap("[::]:0"), State: StateListen, Inode: 90735},
			{Local: ap("[::ffff:127.0.0.1]:9998"), Peer: ap("[::ffff:127.0.0.1]:57642"), State: StateEstablished, RxQueue: 5, Inode: 90737},
			{Local: ap("[::1]:43354"), Peer: ap("[::1]:9998"), State: StateTimeWait, Timer: TimerTimeWait, TimerLeft: 0x16D9 * tick},
			{Local: ap("[::1]:43360"), Peer: ap("[::1]:9998"), State: StateFinWait2, Timer: TimerTimeWait, TimerLeft: 0x1765 * tick},
			{Local: ap("[::1]:9998"), Peer: ap("[::1]:43360"), State: StateCloseWait, RxQueue: 1, Inode: 90739},
			{Local: ap("[2001:db8::77:2]:9998"), Peer: ap("[fe80::1]:54321"), State: StateFinWait1,
				Timer: TimerProbe, TimerLeft: 0xC8 * tick, Probes: 1, Inode: 91004},
		}},
	}
	for _, tt := range tests {
		f, err := os.Open(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseProcNetTCP(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%s: %d sockets, want %d: %+v", tt.file, len(got), len(tt.want), got)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s socket %d:\n got %+v\nwant %+v", tt.file, i, got[i], tt.want[i])
			}
		}
	}
}

func TestParseProcNetTCPErrors(t *testing.T) {
	good := "   0: 0100007F:270D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 90740 1 0000000043a6277e"
	for _, line := range []string{
		"   0: 0100007F:270D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0",
		strings.Replace(good, "0100007F:270D", "100007F:270D", 1),
		strings.Replace(good, "0100007F:270D", "0100007F", 1),
		strings.Replace(good, "0100007F:270D", "0100007G:270D", 1),
		strings.Replace(good, "00000000:0000 0A", "00000000:10000 0A", 1),
		strings.Replace(good, " 0A ", " 1FF ", 1),
		strings.Replace(good, "00000000:00000000 00:", "00000000 00:", 1),
		strings.Replace(good, " 90740 ", " -1 ", 1),
	} {
		_, err := ParseProcNetTCP(strings.NewReader("  sl  local_address\n" + good + "\n" + line + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("ParseProcNetTCP(%q) = %v, want an error naming line 3", line, err)
		}
	}
	if _, err := ParseProcNetTCP(strings.NewReader("  sl\n   0: x\n")); !errors.Is(err, errSyntax) {
		t.Errorf("short line: %v, want errSyntax", err)
	}
}

func TestStateAndTimerNames(t *testing.T) {
	for s, want := range map[State]string{
		StateEstablished: "ESTABLISHED", StateClosing: "CLOSING", StateNewSynRecv: "NEW_SYN_RECV",
		0: "UNKNOWN_00", 0x0D: "UNKNOWN_0D",
	} {
		if s.String() != want {
			t.Errorf("State(%#x) = %q, want %q", uint8(s), s, want)
		}
	}
	for tm, want := range map[Timer]string{TimerOff: "off", TimerOn: "on", TimerKeepalive: "keepalive",
		TimerTimeWait: "timewait", TimerProbe: "probe", 7: "unknown-7"} {
		if tm.String() != want {
			t.Errorf("Timer(%d) = %q, want %q", uint8(tm), tm, want)
		}
	}
}
