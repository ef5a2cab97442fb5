// Package model holds the theory that hostlab sets beside every measurement:
// the Linux kernel's TCP timing rules (tcp_retries2, TCP_USER_TIMEOUT,
// keepalive, SYN retries, tail loss probe, timer-wheel slack) and the
// three-valued verdicts that compare a prediction with what a client saw.
//
// Everything here is pure arithmetic over time.Duration; nothing touches a
// socket or a clock. The formulas follow net/ipv4/tcp_timer.c,
// net/ipv4/tcp_output.c and kernel/time/timer.c of Linux 6.1 (the guest
// kernel), with later changes noted where they matter (tcp_syn_linear_timeouts
// since 6.5).
//
// Times passed to and returned by the predictors are offsets on one axis
// chosen by the caller, normally "since the last segment received from the
// peer" (the last ACK). Keepalive measures its idle time from that instant;
// the retransmission bound is measured from retrans_stamp, the send time of
// the first timeout retransmission.
//
// Timing tolerances follow packetdrill: each is stated explicitly as an
// absolute part plus a percentage of the predicted delay. For kernel timers
// the absolute part is derived from the timer wheel (see TimerSlack): a timer
// never fires early, and fires at most one wheel-level granule late, where the
// granule is 8^level jiffies and the level depends on the timer's length
// (HZ=250: 4 ms below 252 ms, 32 ms below 2.016 s, 256 ms below 16.1 s,
// 2.048 s below 129 s, 16.4 s below 17.2 min, 131 s beyond). A chain of
// timers re-armed from their actual firing accumulates these granules.
//
// Verdicts are three-valued as in Jepsen: Expected, Unexpected and Unknown,
// composed by Combine with Unexpected beating Unknown beating Expected.
package model
