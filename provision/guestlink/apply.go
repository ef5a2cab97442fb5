package guestlink

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Handles of hostlab's qdiscs.
var (
	rootHandle    = netlink.MakeHandle(1, 0)
	ingressHandle = netlink.MakeHandle(0xffff, 0)
)

// linkByMAC finds the interface with hardware address mac.
func linkByMAC(mac net.HardwareAddr) (netlink.Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if bytes.Equal(l.Attrs().HardwareAddr, mac) && l.Type() != "ifb" {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no interface with hardware address %s", mac)
}

// missing turns the kernel's "unknown kind" answers into ErrMissing naming
// the piece (and the module that provides it).
func missing(err error, what, module string) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) && module == "ifb" {
		return fmt.Errorf("%s: %w (module %s: %v)", what, ErrMissing, module, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// netemQdisc builds the netem qdisc for n at the root of link index idx.
func netemQdisc(idx int, n Netem) *netlink.Netem {
	return netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: idx, Handle: rootHandle, Parent: netlink.HANDLE_ROOT},
		netlink.NetemQdiscAttrs{
			Latency: uint32(n.Delay / time.Microsecond), Jitter: uint32(n.Jitter / time.Microsecond), DelayCorr: float32(n.DelayCorr),
			Loss: float32(n.Loss), LossCorr: float32(n.LossCorr),
			Duplicate: float32(n.Duplicate), DuplicateCorr: float32(n.DuplicateCorr),
			ReorderProb: float32(n.Reorder), ReorderCorr: float32(n.ReorderCorr),
		})
}

// Apply replaces hostlab's conditions on the interface with hardware
// address mac: egress on its root, ingress through the IFB. Nil or zero
// conditions leave that direction unconditioned. On failure it clears what
// it put: the interface is left without hostlab's conditions.
func Apply(mac net.HardwareAddr, egress, ingress *Netem) (Report, error) {
	link, err := linkByMAC(mac)
	if err != nil {
		return Report{}, err
	}
	if _, err := Clear(mac); err != nil {
		return Report{}, err
	}
	idx := link.Attrs().Index
	fail := func(err error) (Report, error) {
		if _, cerr := Clear(mac); cerr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", cerr))
		}
		return Report{}, err
	}
	if egress != nil && !egress.IsZero() {
		if err := netlink.QdiscReplace(netemQdisc(idx, *egress)); err != nil {
			return fail(missing(err, "netem qdisc on "+link.Attrs().Name, "sch_netem"))
		}
	}
	if ingress != nil && !ingress.IsZero() {
		ifb := &netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: IFBName, TxQLen: 1000}}
		if err := netlink.LinkAdd(ifb); err != nil {
			return fail(missing(err, "ifb device "+IFBName, "ifb"))
		}
		l, err := netlink.LinkByName(IFBName)
		if err != nil {
			return fail(fmt.Errorf("find %s: %w", IFBName, err))
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return fail(fmt.Errorf("set %s up: %w", IFBName, err))
		}
		if err := netlink.QdiscReplace(netemQdisc(l.Attrs().Index, *ingress)); err != nil {
			return fail(missing(err, "netem qdisc on "+IFBName, "sch_netem"))
		}
		in := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: ingressHandle, Parent: netlink.HANDLE_INGRESS}}
		if err := netlink.QdiscAdd(in); err != nil {
			return fail(missing(err, "ingress qdisc on "+link.Attrs().Name, "sch_ingress"))
		}
		redirect := &netlink.MatchAll{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: ingressHandle, Priority: 1, Protocol: unix.ETH_P_ALL},
			Actions:     []netlink.Action{netlink.NewMirredAction(l.Attrs().Index)},
		}
		if err := netlink.FilterAdd(redirect); err != nil {
			return fail(missing(err, "matchall filter redirecting to "+IFBName, "cls_matchall and act_mirred"))
		}
	}
	return Show(mac)
}

// Clear removes hostlab's conditions from the interface with hardware
// address mac and deletes the IFB; what is not there is skipped.
func Clear(mac net.HardwareAddr) (Report, error) {
	link, err := linkByMAC(mac)
	if err != nil {
		return Report{}, err
	}
	qs, err := netlink.QdiscList(link)
	if err != nil {
		return Report{}, fmt.Errorf("list qdiscs of %s: %w", link.Attrs().Name, err)
	}
	var errs []error
	for _, q := range qs {
		a := q.Attrs()
		if (a.Parent == netlink.HANDLE_ROOT && q.Type() == "netem") || (a.Parent == netlink.HANDLE_INGRESS && q.Type() == "ingress") {
			if err := netlink.QdiscDel(q); err != nil {
				errs = append(errs, fmt.Errorf("delete %s qdisc of %s: %w", q.Type(), link.Attrs().Name, err))
			}
		}
	}
	if l, err := netlink.LinkByName(IFBName); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", IFBName, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Report{}, err
	}
	return Show(mac)
}

// Show reads back the conditions in force on the interface with hardware
// address mac.
func Show(mac net.HardwareAddr) (Report, error) {
	link, err := linkByMAC(mac)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Dev: link.Attrs().Name, Egress: "none", Ingress: "none"}
	if n, ok, err := rootNetem(link); err != nil {
		return Report{}, err
	} else if ok {
		rep.Egress = n.String()
	}
	l, err := netlink.LinkByName(IFBName)
	if err != nil {
		return rep, nil
	}
	n, ok, err := rootNetem(l)
	if err != nil {
		return Report{}, err
	}
	if ok && redirected(link, l) {
		rep.Ingress = n.String()
	}
	return rep, nil
}

// redirected reports whether link's ingress redirects to ifb.
func redirected(link, ifb netlink.Link) bool {
	fs, err := netlink.FilterList(link, ingressHandle)
	if err != nil {
		return false
	}
	for _, f := range fs {
		if m, ok := f.(*netlink.MatchAll); ok {
			for _, a := range m.Actions {
				if mi, ok := a.(*netlink.MirredAction); ok && mi.Ifindex == ifb.Attrs().Index {
					return true
				}
			}
		}
	}
	return false
}

// rootNetem reads the netem qdisc at link's root back as conditions.
func rootNetem(link netlink.Link) (Netem, bool, error) {
	qs, err := netlink.QdiscList(link)
	if err != nil {
		return Netem{}, false, fmt.Errorf("list qdiscs of %s: %w", link.Attrs().Name, err)
	}
	for _, q := range qs {
		nq, ok := q.(*netlink.Netem)
		if !ok || q.Attrs().Parent != netlink.HANDLE_ROOT {
			continue
		}
		tick := netlink.TickInUsec()
		us := func(ticks uint32) time.Duration {
			return (time.Duration(math.Round(float64(ticks)/tick)) * time.Microsecond)
		}
		return Netem{
			Delay: us(nq.Latency), Jitter: us(nq.Jitter), DelayCorr: fromU32(nq.DelayCorr),
			Loss: fromU32(nq.Loss), LossCorr: fromU32(nq.LossCorr),
			Duplicate: fromU32(nq.Duplicate), DuplicateCorr: fromU32(nq.DuplicateCorr),
			Reorder: fromU32(nq.ReorderProb), ReorderCorr: fromU32(nq.ReorderCorr),
		}, true, nil
	}
	return Netem{}, false, nil
}

// fromU32 converts netem's fraction of 2^32-1 to percent, to three
// decimals.
func fromU32(v uint32) float64 {
	return math.Round(float64(v)/math.MaxUint32*100*1000) / 1000
}
