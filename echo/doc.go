// Package echo holds hostlab's echo programs, the instruments every scenario's
// verdict is read from: a forking (or single-process) echo server and an echo
// client that records every socket event, with CLOCK_MONOTONIC and
// CLOCK_REALTIME timestamps, as one JSON line on stdout.
//
// The multi-call hostlab binary dispatches argv[0] basename
// "hostlab-echo-server" to [ServerMain] and "hostlab-echo-client" to
// [ClientMain]; echo/cmd/echo-server and echo/cmd/echo-client are standalone
// equivalents. Both build with CGO_ENABLED=0.
//
// # Events
//
// Every line is one [Event]: {"v":1,"ev":...,"mono_ns":...,"real_ns":...}
// plus the fields that apply; "pid" is always the emitting process and "role"
// is client, server (the listener) or child (a fork-mode connection server).
// Event names:
//
//	start        process started (args, role, pid)
//	listen       server listening (local)
//	accept       server accepted (child_pid serving it, peer, local)
//	child_exit   fork-mode child reaped (child_pid, status or signal)
//	child_ready  fork-mode child adopted its connection; its SIGTERM disposition (action) is in force
//	connecting   client about to call connect (peer as given)
//	connect      client connected (local, peer, sockopts read back)
//	write, read  one system call's worth (seq, bytes)
//	eof          read returned 0 (seq)
//	read_timeout a read deadline passed (errno "timeout")
//	error        a socket call failed (op, errno, err)
//	tcp_info     TCP_INFO sample (reason: periodic|change|event|final;
//	             before_change: the read just before a change, with its
//	             own stamps; connecting: the socket sampled every 10 ms
//	             while connect waits, on every change of state, retransmits,
//	             backoff or RTO, with the read before it)
//	echo_eof     server side saw the client's FIN (bytes echoed)
//	sigterm      the process received SIGTERM (action)
//	close        the process closed the socket
//	exit         the process is exiting (code, outcome, and in "op" which
//	             side ended the run first: read, write, connect or sleep)
//
// # Flood
//
// With --flood BYTES the client does not wait for each echo (str_cli): every
// --interval it drains, without blocking, whatever echo has arrived (one read
// event) and writes a block of BYTES, blocking while the send buffer is full
// (one write event per block). A server that stops reading closes its
// receive window and the client's write blocks while its kernel probes the
// zero window (the hang-server scenario). Its TCP_INFO samples on change
// ignore the RTT's noise: unacked counts only to or from zero and the RTO
// only by a factor of 1.5.
//
// # Client exit codes
//
//	code  constant          outcome
//	0     ExitOK            all lines echoed, or --max-time reached while connected
//	1     ExitOther         any other error
//	2     ExitUsage         bad flags
//	10    ExitEOF           the server closed (read returned 0)
//	11    ExitConnReset     ECONNRESET
//	12    ExitPipe          EPIPE
//	13    ExitTimedOut      ETIMEDOUT (retransmission, keepalive or user timeout)
//	14    ExitHostUnreach   EHOSTUNREACH
//	15    ExitNetUnreach    ENETUNREACH
//	16    ExitConnRefused   ECONNREFUSED
//	17    ExitReadTimeout   --read-timeout passed and --exit-on-timeout is set
//
// The exit event's "outcome" tells the two kinds of 0 apart ("done" or
// "max_time"); --max-time during connect exits 1, outcome
// "max_time_connecting". SIGINT or SIGTERM stop the client with exit 1, outcome
// "signal", after a final tcp_info sample.
//
// # Server
//
// In fork mode the listening parent re-executes /proc/self/exe under argv[0]
// "hostlab-echo-server" with a hidden --child flag and the accepted socket as
// fd 3, so each connection has its own process that can be killed alone; the
// parent reaps children and logs child_exit. --sigterm close makes the parent
// forward SIGTERM to the children, which close with FIN; --sigterm ignore is
// applied in the parent and again in every child.
//
// # SIGPIPE
//
// The Go runtime ignores SIGPIPE for writes to sockets, so a Go client writing
// to a reset connection gets EPIPE (exit 12) and is never killed. The classic
// C client in echo/classic keeps the default disposition and dies of SIGPIPE,
// printing nothing, as in UNP 5.13.
package echo
