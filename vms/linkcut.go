package vms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// CutMechanism says, for results, how CutLink cuts a lab link.
const CutMechanism = "QEMU net filter: a filter-redirector on the NIC's backend, sending every frame of both directions " +
	"to a null chardev, added and removed over QMP through libvirt (qemu-monitor-command); " +
	"both guests keep their carrier and neighbour entries, as when a cable further along is cut"

// ErrLinkCut reports that a lab link is already cut by hostlab.
var ErrLinkCut = errors.New("lab link is already cut")

// LinkEdge says when a lab link was cut or restored, on the host's clock:
// QEMU applied the change while handling the QMP command, so at one instant
// between the command's issue and its return. QEMU's network layer and its
// monitor run under the same lock, so no frame crosses the link in a state
// other than before or after the command.
type LinkEdge struct {
	// Issued is when the command was sent, Returned when its reply arrived.
	Issued   time.Time `json:"issued"`
	Returned time.Time `json:"returned"`
}

// At is the middle of the edge's window: the instant taken as the change.
func (e LinkEdge) At() time.Time { return e.Issued.Add(e.Returned.Sub(e.Issued) / 2) }

// Uncert is half the window: the ± bound on At.
func (e LinkEdge) Uncert() time.Duration { return (e.Returned.Sub(e.Issued) + 1) / 2 }

// cutID is the QOM id of the filter (and of its null chardev) that cuts lab
// link nic.
func cutID(nic int) string { return fmt.Sprintf("hostlab-cut%d", nic) }

// netdevID is QEMU's id of lab link nic's backend: libvirt names it "host"
// and the device alias.
func netdevID(nic int) string { return "host" + linkAlias(nic) }

// qmpError is an error reply of QEMU's monitor.
type qmpError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *qmpError) Error() string { return e.Class + ": " + e.Desc }

// qmp runs one QMP command on a domain's monitor through libvirt and
// returns the reply's "return" value; an error reply becomes a *qmpError.
// The instants bracket the call.
func (h *Hypervisor) qmp(ctx context.Context, name, command string, args any) (json.RawMessage, time.Time, time.Time, error) {
	dom, err := h.lookup(ctx, name)
	if err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, time.Time{}, time.Time{}, fmt.Errorf("qmp %s: %w", command, err)
	}
	var reply string
	start, end, err := timedCall(ctx, "qmp "+command+" on "+name, func() error {
		var qerr error
		reply, qerr = h.api.QEMUDomainMonitorCommand(dom, string(b), 0)
		return qerr
	})
	if err != nil {
		return nil, start, end, err
	}
	var r struct {
		Return json.RawMessage `json:"return"`
		Error  *qmpError       `json:"error"`
	}
	if err := json.Unmarshal([]byte(reply), &r); err != nil {
		return nil, start, end, fmt.Errorf("qmp %s on %s: reply %q: %w", command, name, reply, err)
	}
	if r.Error != nil {
		return nil, start, end, fmt.Errorf("qmp %s on %s: %w", command, name, r.Error)
	}
	return r.Return, start, end, nil
}

// LinkIsCut reports whether hostlab's cut is on lab link nic of a domain.
func (h *Hypervisor) LinkIsCut(ctx context.Context, name string, nic int) (bool, error) {
	ret, _, _, err := h.qmp(ctx, name, "qom-list", map[string]any{"path": "/objects"})
	if err != nil {
		return false, fmt.Errorf("is link %d of %s cut: %w", nic, name, err)
	}
	var objs []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(ret, &objs); err != nil {
		return false, fmt.Errorf("is link %d of %s cut: qom-list: %w", nic, name, err)
	}
	return slices.ContainsFunc(objs, func(o struct {
		Name string `json:"name"`
	}) bool {
		return o.Name == cutID(nic)
	}), nil
}

// CutLink cuts lab link nic of a running domain in both directions: from
// the returned edge on, every frame the guest sends on it and every frame
// arriving for it is discarded in QEMU (see CutMechanism). The guest is not
// told: its NIC keeps its carrier. A link already cut gives ErrLinkCut. If
// the cut fails, nothing is left behind.
func (h *Hypervisor) CutLink(ctx context.Context, name string, nic int) (LinkEdge, error) {
	cut, err := h.LinkIsCut(ctx, name, nic)
	if err != nil {
		return LinkEdge{}, fmt.Errorf("cut link: %w", err)
	}
	if cut {
		return LinkEdge{}, fmt.Errorf("cut link %d of %s: %w", nic, name, ErrLinkCut)
	}
	id := cutID(nic)
	// A chardev left by an interrupted cut or heal would refuse the add.
	_, _, _, _ = h.qmp(ctx, name, "chardev-remove", map[string]any{"id": id})
	if _, _, _, err := h.qmp(ctx, name, "chardev-add", map[string]any{"id": id,
		"backend": map[string]any{"type": "null", "data": map[string]any{}}}); err != nil {
		return LinkEdge{}, fmt.Errorf("cut link %d of %s: %w", nic, name, err)
	}
	// position=head puts the filter before QEMU's own capture (filter-dump)
	// on the way from the guest, so ROLE.lab0.pcap still shows what the
	// guest sent into the cut; on the way to the guest it drops first.
	_, issued, returned, err := h.qmp(ctx, name, "object-add", map[string]any{
		"qom-type": "filter-redirector", "id": id, "netdev": netdevID(nic), "queue": "all", "outdev": id, "position": "head"})
	if err != nil {
		_, _, _, _ = h.qmp(context.WithoutCancel(ctx), name, "chardev-remove", map[string]any{"id": id})
		return LinkEdge{}, fmt.Errorf("cut link %d of %s: %w (the link is not cut)", nic, name, err)
	}
	return LinkEdge{Issued: issued, Returned: returned}, nil
}

// HealLink restores lab link nic of a domain cut by CutLink and returns the
// edge; healed is false (and the edge zero) when the link was not cut. A
// failure to remove the cut's chardev afterwards is returned with the edge:
// the link carries frames again all the same.
func (h *Hypervisor) HealLink(ctx context.Context, name string, nic int) (edge LinkEdge, healed bool, err error) {
	id := cutID(nic)
	cut, err := h.LinkIsCut(ctx, name, nic)
	if err != nil {
		return LinkEdge{}, false, fmt.Errorf("heal link: %w", err)
	}
	if !cut {
		_, _, _, _ = h.qmp(ctx, name, "chardev-remove", map[string]any{"id": id})
		return LinkEdge{}, false, nil
	}
	_, issued, returned, err := h.qmp(ctx, name, "object-del", map[string]any{"id": id})
	if err != nil {
		return LinkEdge{}, false, fmt.Errorf("heal link %d of %s: %w (the link stays cut)", nic, name, err)
	}
	edge = LinkEdge{Issued: issued, Returned: returned}
	if _, _, _, err := h.qmp(ctx, name, "chardev-remove", map[string]any{"id": id}); err != nil {
		return edge, true, fmt.Errorf("heal link %d of %s: the link is restored, its null chardev stays: %w", nic, name, err)
	}
	return edge, true, nil
}
