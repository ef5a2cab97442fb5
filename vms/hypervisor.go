package vms

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// DefaultURI is the libvirt URI used when neither --connect nor
// LIBVIRT_DEFAULT_URI names one.
const DefaultURI = "qemu:///system"

// ErrNotFound reports that a domain does not exist.
var ErrNotFound = errors.New("domain not found")

// ErrDaemonUnreachable reports that libvirtd could not be reached.
var ErrDaemonUnreachable = errors.New("libvirtd is not reachable")

// libvirtAPI is the part of go-libvirt hostlab uses; a fake implements it in
// tests.
type libvirtAPI interface {
	DomainDefineXMLFlags(xml string, flags libvirt.DomainDefineFlags) (libvirt.Domain, error)
	DomainCreate(dom libvirt.Domain) error
	DomainDestroyFlags(dom libvirt.Domain, flags libvirt.DomainDestroyFlagsValues) error
	DomainReset(dom libvirt.Domain, flags uint32) error
	DomainSuspend(dom libvirt.Domain) error
	DomainResume(dom libvirt.Domain) error
	DomainShutdownFlags(dom libvirt.Domain, flags libvirt.DomainShutdownFlagValues) error
	DomainGetState(dom libvirt.Domain, flags uint32) (int32, int32, error)
	DomainUndefineFlags(dom libvirt.Domain, flags libvirt.DomainUndefineFlagsValues) error
	DomainLookupByName(name string) (libvirt.Domain, error)
	DomainGetXMLDesc(dom libvirt.Domain, flags libvirt.DomainXMLFlags) (string, error)
	ConnectListAllDomains(need int32, flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error)
	LifecycleEvents(ctx context.Context) (<-chan libvirt.DomainEventLifecycleMsg, error)
	QEMUDomainMonitorCommand(dom libvirt.Domain, cmd string, flags uint32) (string, error)
	Disconnect() error
}

// Hypervisor is a connection to one libvirt daemon.
type Hypervisor struct {
	api libvirtAPI
	uri string
	// life ends after Disconnect; event subscriptions live under it.
	life context.Context
	end  context.CancelFunc

	evMu   sync.Mutex
	evSubs map[*eventSub]bool
}

// ResolveURI returns the libvirt URI to use: flag if set, else
// LIBVIRT_DEFAULT_URI, else DefaultURI — the order virsh uses.
func ResolveURI(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("LIBVIRT_DEFAULT_URI"); env != "" {
		return env
	}
	return DefaultURI
}

// CheckURI reports, in one line naming the fix, a libvirt URI hostlab
// cannot use: not a URI, or not one of QEMU's (qemu:///system,
// qemu+ssh://HOST/system, …).
func CheckURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("libvirt uri %q is not a URI like qemu:///system: fix --connect or LIBVIRT_DEFAULT_URI", uri)
	}
	if driver, _, _ := strings.Cut(u.Scheme, "+"); driver != "qemu" {
		return fmt.Errorf("libvirt uri %q: hostlab drives QEMU guests: give qemu:///system (or qemu+ssh://HOST/system) in --connect or LIBVIRT_DEFAULT_URI", uri)
	}
	return nil
}

// Connect dials the libvirt daemon at uri (see ResolveURI).
func Connect(ctx context.Context, uri string) (*Hypervisor, error) {
	if err := CheckURI(uri); err != nil {
		return nil, err
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, err
	}
	var lv *libvirt.Libvirt
	err = callCtx(ctx, "connect "+uri, func() error {
		var cerr error
		lv, cerr = libvirt.ConnectToURI(u)
		return cerr
	})
	if err != nil {
		if strings.HasPrefix(u.Scheme, "qemu") && !strings.Contains(u.Scheme, "+") && u.Host == "" {
			return nil, fmt.Errorf("%w at %s (%v): run `hostlab setup` or start libvirtd", ErrDaemonUnreachable, uri, err)
		}
		return nil, fmt.Errorf("%w at %s: %v: check --connect (or LIBVIRT_DEFAULT_URI) and that libvirtd runs there", ErrDaemonUnreachable, uri, err)
	}
	return newHypervisor(lv, uri), nil
}

// newHypervisor wraps an API implementation (used by tests with a fake).
func newHypervisor(api libvirtAPI, uri string) *Hypervisor {
	life, end := context.WithCancel(context.Background())
	return &Hypervisor{api: api, uri: uri, life: life, end: end}
}

// URI returns the URI this connection was made to.
func (h *Hypervisor) URI() string { return h.uri }

// Close disconnects from libvirt, then ends event subscriptions (see
// Events for why in that order).
func (h *Hypervisor) Close() error {
	defer h.end()
	if err := h.api.Disconnect(); err != nil {
		return fmt.Errorf("disconnect from %s: %w", h.uri, err)
	}
	return nil
}

// callTimeout bounds a libvirt call when the caller's context has no deadline.
const callTimeout = 60 * time.Second

// callCtx runs fn, returning early with the context's error if ctx ends
// first. go-libvirt takes no context, so an abandoned call finishes in the
// background.
func callCtx(ctx context.Context, what string, fn func() error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// isNotFound reports whether err is libvirt's "no domain" error.
func isNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || libvirt.IsNotFound(err)
}
