package probes

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// brief renders records as "ev local>peer STATE timer retrnsmt" for comparison.
func brief(recs []SockRecord) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "%s %s>%s %s %s %d tx%d rx%d\n", r.Ev, r.Local, r.Peer, r.State, r.Timer, r.Retrnsmt, r.TxQueue, r.RxQueue)
	}
	return b.String()
}

func TestSamplerUpdate(t *testing.T) {
	ap := netip.MustParseAddrPort
	listen := Socket{Local: ap("[::]:9998"), Peer: ap("[::]:0"), State: StateListen, TxQueue: 128, Inode: 1}
	conn := Socket{Local: ap("[::ffff:192.168.77.2]:9998"), Peer: ap("[::ffff:192.168.77.1]:40000"), State: StateEstablished, Inode: 2}
	other := Socket{Local: ap("192.168.77.2:22"), Peer: ap("192.168.77.1:40001"), State: StateEstablished, Inode: 3}
	s := newSampler(9998)
	with := func(f func(*Socket)) Socket { c := conn; f(&c); return c }
	steps := []struct {
		name  string
		socks []Socket
		want  string
	}{
		{"first sample lists all matching", []Socket{other, listen, conn},
			"sock [::]:9998>[::]:0 LISTEN off 0 tx128 rx0\n" +
				"sock 192.168.77.2:9998>192.168.77.1:40000 ESTABLISHED off 0 tx0 rx0\n"},
		{"unchanged", []Socket{listen, conn, other}, ""},
		{"timer ticks and inode alone are no change", []Socket{listen, with(func(c *Socket) { c.TimerLeft, c.Inode = 5*time.Millisecond, 9 })}, ""},
		{"queue", []Socket{listen, with(func(c *Socket) { c.TxQueue = 5 })},
			"sock 192.168.77.2:9998>192.168.77.1:40000 ESTABLISHED off 0 tx5 rx0\n"},
		{"retransmit", []Socket{listen, with(func(c *Socket) { c.TxQueue, c.Timer, c.Retransmits = 5, TimerOn, 1 })},
			"sock 192.168.77.2:9998>192.168.77.1:40000 ESTABLISHED on 1 tx5 rx0\n"},
		{"TIME_WAIT entry is the same socket", []Socket{listen, with(func(c *Socket) { c.State, c.Timer, c.Inode = StateTimeWait, TimerTimeWait, 0 })},
			"sock 192.168.77.2:9998>192.168.77.1:40000 TIME_WAIT timewait 0 tx0 rx0\n"},
		{"gone", []Socket{listen},
			"sock_gone 192.168.77.2:9998>192.168.77.1:40000 TIME_WAIT timewait 0 tx0 rx0\n"},
		{"back", []Socket{listen, conn},
			"sock 192.168.77.2:9998>192.168.77.1:40000 ESTABLISHED off 0 tx0 rx0\n"},
		{"duplicate addresses are two sockets", []Socket{listen, conn, listen},
			"sock [::]:9998>[::]:0 LISTEN off 0 tx128 rx0\n"},
		{"all gone, by address", nil,
			"sock_gone [::]:9998>[::]:0 LISTEN off 0 tx128 rx0\n" +
				"sock_gone [::]:9998>[::]:0 LISTEN off 0 tx128 rx0\n" +
				"sock_gone 192.168.77.2:9998>192.168.77.1:40000 ESTABLISHED off 0 tx0 rx0\n"},
	}
	for _, st := range steps {
		if got := brief(s.update(st.socks)); got != st.want {
			t.Errorf("%s:\n got %s\nwant %s", st.name, got, st.want)
		}
	}
}

// TestSamplerTCPInfo checks which tcp_info movements make a line: RTT
// wiggles and small RTO moves do not, an RTO timeout (backoff, doubled RTO,
// total_retrans) does, and so does a small RTO drift once it adds up to
// rtoStep from the value last written. A vanished socket is reported as
// last seen.
func TestSamplerTCPInfo(t *testing.T) {
	ap := netip.MustParseAddrPort
	base := func(f func(*TCPInfo)) Socket {
		ti := &TCPInfo{Len: tcpInfoLen61}
		ti.State, ti.Rto, ti.Rtt, ti.Snd_wnd = uint8(StateEstablished), 204_000, 1_000, 65_535
		f(ti)
		return Socket{Local: ap("192.168.77.1:40000"), Peer: ap("192.168.77.2:9998"), State: StateEstablished,
			Inode: 5, Info: ti, Mem: &MemInfo{Sndbuf: 87040}}
	}
	s := newSampler(9998)
	steps := []struct {
		name string
		sock Socket
		want string // rto_us of the line written, "" for none
	}{
		{"first", base(func(*TCPInfo) {}), "204000"},
		{"rtt wiggle", base(func(ti *TCPInfo) { ti.Rtt, ti.Rttvar, ti.Last_data_recv = 3_000, 700, 40 }), ""},
		{"rto drift", base(func(ti *TCPInfo) { ti.Rto = 216_000 }), ""},
		{"more drift", base(func(ti *TCPInfo) { ti.Rto = 280_000 }), ""},
		{"drift adds up to rtoStep", base(func(ti *TCPInfo) { ti.Rto = 308_000 }), "308000"},
		{"cwnd and byte counters", base(func(ti *TCPInfo) { ti.Rto, ti.Snd_cwnd, ti.Bytes_acked = 308_000, 10, 99 }), ""},
		{"timeout", base(func(ti *TCPInfo) {
			ti.Rto, ti.Backoff, ti.Retransmits, ti.Total_retrans, ti.Ca_state = 616_000, 1, 1, 1, 4
		}), "616000"},
		{"total_rto alone", base(func(ti *TCPInfo) {
			ti.Rto, ti.Backoff, ti.Retransmits, ti.Total_retrans, ti.Ca_state, ti.Total_rto = 616_000, 1, 1, 1, 4, 1
		}), "616000"},
		{"zero window", base(func(ti *TCPInfo) {
			ti.Rto, ti.Backoff, ti.Retransmits, ti.Total_retrans, ti.Ca_state, ti.Total_rto, ti.Snd_wnd = 616_000, 1, 1, 1, 4, 1, 0
		}), "616000"},
		{"last seen", base(func(ti *TCPInfo) {
			ti.Rto, ti.Backoff, ti.Retransmits, ti.Total_retrans, ti.Ca_state, ti.Total_rto, ti.Snd_wnd, ti.Rtt = 616_000, 1, 1, 1, 4, 1, 0, 7
		}), ""},
	}
	for _, st := range steps {
		recs := s.update([]Socket{st.sock})
		got := ""
		if len(recs) > 0 {
			got = fmt.Sprint(recs[0].Info.Rto)
		}
		if len(recs) > 1 || got != st.want {
			t.Errorf("%s: %d lines, rto %q; want rto %q", st.name, len(recs), got, st.want)
		}
	}
	gone := s.update(nil)
	if len(gone) != 1 || gone[0].Ev != "sock_gone" || gone[0].Info.Rtt != 7 {
		t.Errorf("gone: %+v, want one sock_gone as last seen (rtt 7)", gone)
	}
	for _, tt := range []struct {
		name string
		a, b Socket
	}{
		{"tcp_info appears", Socket{}, base(func(*TCPInfo) {})},
		{"socket drops", base(func(*TCPInfo) {}), func() Socket { s := base(func(*TCPInfo) {}); s.Mem = &MemInfo{Drops: 1}; return s }()},
		{"lost", base(func(*TCPInfo) {}), base(func(ti *TCPInfo) { ti.Lost = 1 })},
		{"retrans", base(func(*TCPInfo) {}), base(func(ti *TCPInfo) { ti.Retrans = 1 })},
		{"probes", base(func(*TCPInfo) {}), func() Socket { s := base(func(*TCPInfo) {}); s.Probes = 1; return s }()},
	} {
		if !changed(tt.a, tt.b) || !changed(tt.b, tt.a) {
			t.Errorf("%s: not a change", tt.name)
		}
	}
}

// TestSamplerLive watches a loopback connection through both sources, the
// host's own sock_diag and /proc/net/tcp: found ESTABLISHED on both ends,
// then FIN_WAIT2 (or TIME_WAIT) and CLOSE_WAIT after the client closes, then
// TIME_WAIT (or gone) and gone after the server closes.
func TestSamplerLive(t *testing.T) {
	t.Run(SourceSockDiag, func(t *testing.T) {
		requireSockDiag(t)
		testSamplerLive(t, dumpSockDiag)
	})
	t.Run(SourceProcNet, func(t *testing.T) {
		if _, err := os.Stat("/proc/net/tcp"); err != nil {
			t.Skipf("no socket table: %v", err)
		}
		testSamplerLive(t, func(uint16) ([]Socket, error) { return readProcNetTCP() })
	})
}

func testSamplerLive(t *testing.T, read func(port uint16) ([]Socket, error)) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	cli, srv := client.LocalAddr().String(), server.LocalAddr().String()
	s := newSampler(port)
	state := map[string]string{} // "local>peer" -> last state, "" when gone
	sample := func() {
		t.Helper()
		socks, err := read(port)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s.update(socks) {
			k := r.Local + ">" + r.Peer
			if state[k] = r.State; r.Ev == "sock_gone" {
				state[k] = ""
			}
		}
	}
	// waitFor samples until ok holds: the kernel moves the states on its
	// own time, so poll (the deadline only guards against a hang).
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			sample()
			if ok() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: states %v", what, state)
			}
		}
	}
	sample()
	if got := state[srv+">0.0.0.0:0"]; got != "LISTEN" {
		t.Errorf("listener %s: %q, want LISTEN (states %v)", srv, got, state)
	}
	if state[cli+">"+srv] != "ESTABLISHED" || state[srv+">"+cli] != "ESTABLISHED" {
		t.Fatalf("connection %s-%s not ESTABLISHED on both ends: %v", cli, srv, state)
	}
	client.Close()
	waitFor("client closed", func() bool {
		c := state[cli+">"+srv]
		return (c == "FIN_WAIT2" || c == "TIME_WAIT") && state[srv+">"+cli] == "CLOSE_WAIT"
	})
	server.Close()
	waitFor("server closed", func() bool {
		c := state[cli+">"+srv]
		return (c == "TIME_WAIT" || c == "") && state[srv+">"+cli] == ""
	})
}
