// Package guestlink puts link conditions — the kernel's netem qdisc: delay,
// jitter, loss, duplication, reordering — on a guest's lab interface. The
// multi-call hostlab binary, run as "hostlab-link" ([Name]), applies them
// ([Main]); busybox's tc cannot configure netem, so it speaks netlink
// itself (vishvananda/netlink). It is built with CGO_ENABLED=0.
//
// # hostlab-link
//
//	hostlab-link apply < {"mac":"52:54:00:…","egress":{"delay_ns":50000000},"ingress":{"loss_pct":2}}
//	hostlab-link clear MAC
//	hostlab-link show MAC
//
// apply finds the interface with hardware address MAC, removes whatever
// conditions hostlab put on it before, then puts a netem qdisc at its root
// for the frames the guest sends (egress) and, for the frames it receives
// (ingress), an ingress qdisc whose matchall filter redirects every frame
// to an IFB device, hostlab-ifb0, with a netem qdisc at its root. It reads
// the qdiscs back and prints a [Report]. If a step fails it undoes the
// others: the interface is left as it was. clear removes hostlab's qdiscs
// and the IFB (the interface's default qdisc returns); show prints the
// [Report] of what is in force.
//
// The exit status is 0 on success, 1 when a step fails, 2 for a usage error
// or a spec netem would refuse, and 3 when the guest kernel lacks a piece
// (sch_netem, ifb, sch_ingress, act_mirred, cls_matchall): the message on
// stderr names it.
package guestlink
