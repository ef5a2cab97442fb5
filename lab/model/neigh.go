package model

import "time"

// Neigh is an interface's neighbour (ARP) configuration, the
// net.ipv4.neigh.IFACE sysctls that decide how long the kernel tries to
// resolve a silent host's address.
type Neigh struct {
	// McastSolicit is mcast_solicit: broadcast requests of an INCOMPLETE
	// entry.
	McastSolicit int `json:"mcast_solicit"`
	// AppSolicit is app_solicit: requests handed to a user-space daemon
	// (netlink), not sent on the wire.
	AppSolicit int `json:"app_solicit"`
	// UcastSolicit is ucast_solicit: unicast probes of an entry in PROBE.
	UcastSolicit int `json:"ucast_solicit"`
	// RetransTime is retrans_time_ms: the time between requests.
	RetransTime time.Duration `json:"retrans_time_ns"`
}

// LinuxNeigh is the kernel's default neighbour configuration.
func LinuxNeigh() Neigh {
	return Neigh{McastSolicit: 3, UcastSolicit: 3, RetransTime: time.Second}
}

// Requests is the number of broadcast requests an INCOMPLETE entry sends to
// a host that never answers.
func (n Neigh) Requests() int { return max(n.McastSolicit, 0) }

// Interval is the neighbour timer between requests: retrans_time, at least
// HZ/100 (neigh_timer_handler).
func (n Neigh) Interval() time.Duration { return max(n.RetransTime, 10*time.Millisecond) }

// ResolveFail is how long after its first request an entry resolving a
// silent host turns FAILED. __neigh_event_send starts INCOMPLETE with the
// probe count at ucast_solicit and sends the first request at once;
// neigh_timer_handler sends one more per interval until the count reaches
// neigh_max_probes (ucast_solicit + app_solicit + mcast_solicit), and at the
// expiry after that marks the entry FAILED: (mcast_solicit + app_solicit)
// intervals after the first request, 3 s by default. neigh_invalidate then
// reports every packet queued on the entry as undeliverable (an ICMP host
// unreachable to its own sender): a connect waiting in SYN_SENT fails with
// EHOSTUNREACH at that instant.
func (n Neigh) ResolveFail() time.Duration {
	return time.Duration(max(n.McastSolicit, 0)+max(n.AppSolicit, 0)) * n.Interval()
}
