// Package probes holds two small guest instruments of the multi-call hostlab
// binary, both built with CGO_ENABLED=0 on the standard library and
// golang.org/x/sys only.
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
// A recorded netstat: every --interval it reads /proc/net/tcp and
// /proc/net/tcp6, keeps the sockets whose local or remote port is --port, and
// writes one JSON line per socket that appeared, changed (state, tx_queue,
// rx_queue, retrnsmt or timer) or disappeared; its first sample lists every
// matching socket. It runs for --duration (0 = until SIGTERM or SIGINT, which
// end it with exit 0); it exits 1 when stdout fails and 2 on bad flags. Lines
// follow the echo events' style:
//
//	{"v":1,"ev":"start","mono_ns":…,"real_ns":…,"pid":42,"args":["hostlab-sockstat","--port","9998"]}
//	{"v":1,"ev":"sock","mono_ns":…,"real_ns":…,"local":"192.168.77.2:9998","peer":"192.168.77.1:40000","state":"FIN_WAIT2","tx_queue":0,"rx_queue":0,"timer":"keepalive","retrnsmt":0,"inode":1234,"uid":0}
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
//	retrnsmt     consecutive retransmission timeouts (icsk_retransmits)
//	inode, uid   owner of the socket; 0 for TIME_WAIT and NEW_SYN_RECV
//
// A line's stamps are taken right after the tables were read: the change it
// reports happened between the previous sample and that stamp.
package probes
