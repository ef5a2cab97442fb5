package guestinit

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// linkWait bounds the wait for a NIC to appear after its driver loaded.
const linkWait = 5 * time.Second

// configureNetwork brings lo up and configures each interface; it logs each
// step and returns one joined error for everything that failed.
func configureNetwork(log *Logger, nets []NetConfig) error {
	var errs []error
	if lo, err := netlink.LinkByName("lo"); err != nil {
		errs = append(errs, fmt.Errorf("find lo: %w", err))
	} else if err := netlink.LinkSetUp(lo); err != nil {
		errs = append(errs, fmt.Errorf("set lo up: %w", err))
	}
	for _, n := range nets {
		if err := configureLink(log, n); err != nil {
			errs = append(errs, fmt.Errorf("configure %s: %w", n.MAC, err))
		}
	}
	return errors.Join(errs...)
}

func configureLink(log *Logger, n NetConfig) error {
	link, err := linkByMAC(n.MAC, linkWait)
	if err != nil {
		return err
	}
	name := link.Attrs().Name
	addr := &netlink.Addr{IPNet: prefixIPNet(n.Addr)}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("add address %s to %s: %w", n.Addr, name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	msg := fmt.Sprintf("net: %s (%s) up with %s", name, n.MAC, n.Addr)
	if n.Gateway.IsValid() {
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if n.Gateway.Is6() {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixIPNet(dst), Gw: net.IP(n.Gateway.AsSlice())}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("add default route via %s on %s: %w", n.Gateway, name, err)
		}
		msg += ", default via " + n.Gateway.String()
	}
	log.Logf("%s", msg)
	return nil
}

// linkByMAC finds the link with hardware address mac, polling until wait
// passes in case its driver is still probing.
func linkByMAC(mac net.HardwareAddr, wait time.Duration) (netlink.Link, error) {
	deadline := time.Now().Add(wait)
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("list links: %w", err)
		}
		for _, l := range links {
			if bytes.Equal(l.Attrs().HardwareAddr, mac) {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no link with hardware address %s after %s", mac, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// prefixIPNet converts a prefix, keeping its host bits, to a net.IPNet.
func prefixIPNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}
