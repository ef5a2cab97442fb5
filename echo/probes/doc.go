// Package probes holds two small guest instruments of the multi-call hostlab
// binary, both built with CGO_ENABLED=0 on the standard library and
// golang.org/x/sys only (hostlab-sockstat speaks netlink itself).
//
// The multi-call binary dispatches argv[0] basename "hostlab-clock"
// ([ClockName]) to [ClockMain] and "hostlab-sockstat" ([SockstatName]) to
// [SockstatMain].
//
// # hostlab-clock
//
// The guest half of an NTP-style clock exchange (see lab/clocksync): for each
// line read from stdin it writes, in one write, the guest's CLOCK_REALTIME and
// CLOCK_MONOTONIC in nanoseconds, read right after the line arrived:
//
//	1764060000123456789 51234567890
//
// It exits 0 at the end of its input, 1 when reading or writing fails and 2
// when given arguments.
//
// # hostlab-sockstat
//
// A recorder of the kernel's view of one port's TCP sockets: every
// --interval it dumps, over NETLINK_SOCK_DIAG (inet_diag, the interface of
// ss(8)), the IPv4 and IPv6 TCP sockets whose local or remote port is
// --port, in any state, each with its struct tcp_info (INET_DIAG_INFO) and
// memory accounting (INET_DIAG_SKMEMINFO), and writes one JSON line per
// socket that appeared, changed or disappeared; its first sample lists
// every matching socket. Only when a first dump fails (no tcp_diag in the
// kernel, no netlink) does it read /proc/net/tcp and /proc/net/tcp6
// instead, without tcp_info; its second line names the source used. It runs
// for --duration (0 = until SIGTERM or SIGINT, which end it with exit 0); it
// exits 1 when stdout fails and 2 on bad flags. Lines follow the echo
// events' style:
//
//	{"v":1,"ev":"start","mono_ns":…,"real_ns":…,"pid":42,"args":["hostlab-sockstat","--port","9998"]}
//	{"v":1,"ev":"source","mono_ns":…,"real_ns":…,"source":"sock_diag"}
//	{"v":1,"ev":"source","mono_ns":…,"real_ns":…,"source":"procnet","err":"…"} (instead, without sock_diag)
//	{"v":1,"ev":"sock","mono_ns":…,"real_ns":…,"local":"192.168.77.1:40000","peer":"192.168.77.2:9998","state":"ESTABLISHED","tx_queue":6,"rx_queue":0,"timer":"on","timer_ms":1432,"retrnsmt":3,"probes":0,"inode":1234,"uid":0,"tcp_info":{"state":"ESTABLISHED","ca_state":4,"retransmits":3,"probes":0,"backoff":3,…,"rto_us":1632000,…},"skmem":{"rmem_alloc":0,…}}
//	{"v":1,"ev":"sock_gone",…same fields, as last seen…}
//	{"v":1,"ev":"error","mono_ns":…,"real_ns":…,"op":"read socket tables","err":"…"} (once per distinct error)
//	{"v":1,"ev":"exit","mono_ns":…,"real_ns":…,"reason":"duration|signal"}
//
// Fields of sock and sock_gone:
//
//	local, peer  address:port; IPv4-mapped IPv6 addresses are shown as IPv4
//	state        include/net/tcp_states.h name (ESTABLISHED … NEW_SYN_RECV)
//	tx_queue     bytes sent and not yet acknowledged (LISTEN: the backlog limit)
//	rx_queue     bytes received and not yet read (LISTEN: connections not yet accepted)
//	timer        pending timer: on (retransmission, loss probe), keepalive,
//	             timewait, probe (zero window) or off
//	timer_ms     time until that timer fires
//	retrnsmt     consecutive retransmission timeouts (icsk_retransmits)
//	probes       unanswered keepalive or zero window probes (icsk_probes_out)
//	inode, uid   the socket's inode (as in /proc/PID/fd's socket:[INODE]) and
//	             owner; 0 for TIME_WAIT and SYN_RECV entries
//	tcp_info     sock_diag only, not for TIME_WAIT and SYN_RECV entries: the
//	             kernel's struct tcp_info, every field the running kernel has
//	             (Debian 12's 6.1 ends with snd_wnd; later kernels add rcv_wnd,
//	             rehash, total_rto, … and 6.18 ends with received_ce_bytes),
//	             named as in include/uapi/linux/tcp.h without "tcpi_", with
//	             _us or _ms on times; state is a name, as above
//	skmem        sock_diag only, as tcp_info: rmem_alloc, rcvbuf, wmem_alloc,
//	             sndbuf, fwd_alloc, wmem_queued, optmem, backlog (bytes), drops
//
// A socket is written again when its state, queues, timer, retrnsmt or
// probes change, or in tcp_info its ca_state, backoff, lost, retrans,
// total_retrans or total_rto, whether snd_wnd is zero, or skmem's drops;
// and when rto_us is 1.5 times (or a 1.5th of) the value last written, which
// a retransmission timeout's doubling always is and RTT noise is not. RTT,
// cwnd, timer_ms, times and byte counters alone make no line.
//
// A line's stamps are taken right after the sample was read: the change it
// reports happened between the previous sample and that stamp.
package probes
