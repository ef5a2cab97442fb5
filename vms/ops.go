package vms

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
)

// State is a domain's run state as libvirt reports it.
type State string

// The states hostlab distinguishes.
const (
	StateRunning  State = "running"
	StateShutoff  State = "shut off"
	StatePaused   State = "paused"
	StateShutdown State = "in shutdown"
	StateCrashed  State = "crashed"
	StateOther    State = "other"
	StateMissing  State = "missing"
)

func stateName(s int32) State {
	switch libvirt.DomainState(s) {
	case libvirt.DomainRunning, libvirt.DomainBlocked:
		return StateRunning
	case libvirt.DomainShutoff:
		return StateShutoff
	case libvirt.DomainPaused, libvirt.DomainPmsuspended:
		return StatePaused
	case libvirt.DomainShutdown:
		return StateShutdown
	case libvirt.DomainCrashed:
		return StateCrashed
	}
	return StateOther
}

// Define creates (or replaces the definition of) the persistent domain for m.
func (h *Hypervisor) Define(ctx context.Context, m Machine) error {
	x, err := m.DomainXML()
	if err != nil {
		return err
	}
	return callCtx(ctx, "define domain "+m.Name, func() error {
		if _, err := h.api.DomainDefineXMLFlags(x, libvirt.DomainDefineValidate); err != nil {
			return fmt.Errorf("define domain %s: %w", m.Name, err)
		}
		return nil
	})
}

// lookup resolves a domain by name, mapping libvirt's error to ErrNotFound.
func (h *Hypervisor) lookup(ctx context.Context, name string) (libvirt.Domain, error) {
	var dom libvirt.Domain
	err := callCtx(ctx, "look up domain "+name, func() error {
		var lerr error
		dom, lerr = h.api.DomainLookupByName(name)
		return lerr
	})
	if err != nil {
		if isNotFound(err) {
			return dom, fmt.Errorf("domain %s: %w", name, ErrNotFound)
		}
		return dom, fmt.Errorf("look up domain %s: %w", name, err)
	}
	return dom, nil
}

// do looks a domain up and runs op on it.
func (h *Hypervisor) do(ctx context.Context, verb, name string, op func(libvirt.Domain) error) error {
	dom, err := h.lookup(ctx, name)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	return callCtx(ctx, verb+" "+name, func() error {
		if err := op(dom); err != nil {
			return fmt.Errorf("%s %s: %w", verb, name, err)
		}
		return nil
	})
}

// Start boots a defined domain.
func (h *Hypervisor) Start(ctx context.Context, name string) error {
	return h.do(ctx, "start domain", name, h.api.DomainCreate)
}

// PowerOff cuts the domain's power at once (libvirt destroy): the guest
// sends nothing more, as when a host loses power.
func (h *Hypervisor) PowerOff(ctx context.Context, name string) error {
	return h.do(ctx, "power off domain", name, func(d libvirt.Domain) error {
		return h.api.DomainDestroyFlags(d, libvirt.DomainDestroyDefault)
	})
}

// Reset hard-resets the domain, as the reset button does: no shutdown runs.
func (h *Hypervisor) Reset(ctx context.Context, name string) error {
	return h.do(ctx, "reset domain", name, func(d libvirt.Domain) error {
		return h.api.DomainReset(d, 0)
	})
}

// Pause stops the domain's virtual CPUs (libvirt suspend, QEMU's "stop"):
// when it returns, the guest executes nothing and QEMU passes no frame from
// its NICs to their backends until Resume. Memory and devices stay as they
// were.
func (h *Hypervisor) Pause(ctx context.Context, name string) error {
	return h.do(ctx, "pause domain", name, h.api.DomainSuspend)
}

// Resume restarts the virtual CPUs of a paused domain.
func (h *Hypervisor) Resume(ctx context.Context, name string) error {
	return h.do(ctx, "resume domain", name, h.api.DomainResume)
}

// Shutdown presses the domain's ACPI power button; the guest's init decides
// what happens next.
func (h *Hypervisor) Shutdown(ctx context.Context, name string) error {
	return h.do(ctx, "shut down domain", name, func(d libvirt.Domain) error {
		return h.api.DomainShutdownFlags(d, libvirt.DomainShutdownAcpiPowerBtn)
	})
}

// State returns the domain's state, or StateMissing when it is not defined.
func (h *Hypervisor) State(ctx context.Context, name string) (State, error) {
	dom, err := h.lookup(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return StateMissing, nil
	}
	if err != nil {
		return "", err
	}
	var st int32
	err = callCtx(ctx, "state of domain "+name, func() error {
		var serr error
		st, _, serr = h.api.DomainGetState(dom, 0)
		return serr
	})
	if err != nil {
		if isNotFound(err) {
			return StateMissing, nil
		}
		return "", fmt.Errorf("state of domain %s: %w", name, err)
	}
	return stateName(st), nil
}

// Remove powers the domain off if it runs and undefines it. A domain that
// does not exist is not an error, so Remove is idempotent.
func (h *Hypervisor) Remove(ctx context.Context, name string) error {
	st, err := h.State(ctx, name)
	if err != nil {
		return err
	}
	if st == StateMissing {
		return nil
	}
	if st != StateShutoff {
		if err := h.PowerOff(ctx, name); err != nil && !errors.Is(err, ErrNotFound) && !isNotRunning(err) {
			return err
		}
	}
	err = h.do(ctx, "undefine domain", name, func(d libvirt.Domain) error {
		return h.api.DomainUndefineFlags(d, libvirt.DomainUndefineManagedSave|libvirt.DomainUndefineNvram)
	})
	if errors.Is(err, ErrNotFound) || isNotFound(err) {
		return nil
	}
	return err
}

// isNotRunning reports libvirt's "domain is not running" (a race with a
// guest that powered itself off).
func isNotRunning(err error) bool {
	var lerr libvirt.Error
	return errors.As(err, &lerr) && lerr.Code == uint32(libvirt.ErrOperationInvalid)
}

// DomainInfo describes one hostlab domain found on the hypervisor.
type DomainInfo struct {
	Name  string `json:"name"`
	Lab   string `json:"lab"`
	Role  string `json:"role"`
	State State  `json:"state"`
}

// List returns every domain carrying hostlab metadata, sorted by name.
// Domains named hostlab-* without metadata are listed with an empty Lab.
func (h *Hypervisor) List(ctx context.Context) ([]DomainInfo, error) {
	var doms []libvirt.Domain
	err := callCtx(ctx, "list domains", func() error {
		var lerr error
		doms, _, lerr = h.api.ConnectListAllDomains(1, 0)
		return lerr
	})
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	var out []DomainInfo
	for _, d := range doms {
		var x string
		if err := callCtx(ctx, "describe domain "+d.Name, func() error {
			var lerr error
			x, lerr = h.api.DomainGetXMLDesc(d, 0)
			return lerr
		}); err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("describe domain %s: %w", d.Name, err)
		}
		lab, role, ok := parseMetadata(x)
		if !ok && !strings.HasPrefix(d.Name, DomainPrefix) {
			continue
		}
		st, err := h.State(ctx, d.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, DomainInfo{Name: d.Name, Lab: lab, Role: role, State: st})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
