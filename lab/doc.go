// Package lab brings up, opens and tears down a hostlab lab: a client guest
// and a server guest joined by a point-to-point lab link, each reachable over
// SSH through a management port on 127.0.0.1 with a pinned host key.
//
// A lab's state lives in its own folder (Config.Home/labs/NAME): lab.json,
// the client key, each guest's initrd, serial console log and pcap of the lab
// link. libvirt holds the domains, tagged with hostlab metadata; Down removes
// both and is idempotent.
//
// Scenarios, measurement and results build on Lab in subpackages.
package lab
