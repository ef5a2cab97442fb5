package vms

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// fakeLibvirt is an in-memory libvirtAPI: domains are defined from XML and
// change state as the real daemon's would.
type fakeLibvirt struct {
	mu      sync.Mutex
	domains map[string]*fakeDomain
	calls   []string
	events  chan libvirt.DomainEventLifecycleMsg
	// fail makes the named verb ("suspend", "destroy", …) fail with its
	// error, after recording the call.
	fail map[string]error
	// delay makes the named verb take at least that long.
	delay map[string]time.Duration
}

type fakeDomain struct {
	xml   string
	state libvirt.DomainState
	// objects and chardevs are the QOM objects and chardevs added over QMP.
	objects, chardevs map[string]bool
}

func newFake() *fakeLibvirt {
	return &fakeLibvirt{domains: map[string]*fakeDomain{}, events: make(chan libvirt.DomainEventLifecycleMsg, 32)}
}

func (f *fakeLibvirt) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func noDomain(name string) error {
	return libvirt.Error{Code: uint32(libvirt.ErrNoDomain), Message: "Domain not found: no domain with matching name '" + name + "'"}
}

func (f *fakeLibvirt) emit(name string, ev libvirt.DomainEventType, detail int32) {
	select {
	case f.events <- libvirt.DomainEventLifecycleMsg{Dom: libvirt.Domain{Name: name}, Event: int32(ev), Detail: detail}:
	default:
	}
}

func (f *fakeLibvirt) DomainDefineXMLFlags(x string, _ libvirt.DomainDefineFlags) (libvirt.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		return libvirt.Domain{}, libvirt.Error{Code: 27, Message: "XML error: " + err.Error()}
	}
	f.record("define %s", d.Name)
	if old, ok := f.domains[d.Name]; ok {
		old.xml = x
	} else {
		f.domains[d.Name] = &fakeDomain{xml: x, state: libvirt.DomainShutoff}
	}
	f.emit(d.Name, libvirt.DomainEventDefined, 0)
	return libvirt.Domain{Name: d.Name}, nil
}

func (f *fakeLibvirt) get(dom libvirt.Domain) (*fakeDomain, error) {
	d, ok := f.domains[dom.Name]
	if !ok {
		return nil, noDomain(dom.Name)
	}
	return d, nil
}

// transition moves a domain from one of the states in from to to.
func (f *fakeLibvirt) transition(verb string, dom libvirt.Domain, to libvirt.DomainState, from ...libvirt.DomainState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("%s %s", verb, dom.Name)
	time.Sleep(f.delay[verb])
	if err := f.fail[verb]; err != nil {
		return err
	}
	d, err := f.get(dom)
	if err != nil {
		return err
	}
	if !slices.Contains(from, d.state) {
		return libvirt.Error{Code: uint32(libvirt.ErrOperationInvalid), Message: "Requested operation is not valid: domain is not in the right state"}
	}
	d.state = to
	return nil
}

func (f *fakeLibvirt) DomainCreate(dom libvirt.Domain) error {
	if err := f.transition("create", dom, libvirt.DomainRunning, libvirt.DomainShutoff); err != nil {
		return err
	}
	f.emit(dom.Name, libvirt.DomainEventStarted, 0)
	return nil
}

func (f *fakeLibvirt) DomainDestroyFlags(dom libvirt.Domain, _ libvirt.DomainDestroyFlagsValues) error {
	if err := f.transition("destroy", dom, libvirt.DomainShutoff, libvirt.DomainRunning, libvirt.DomainPaused); err != nil {
		return err
	}
	f.emit(dom.Name, libvirt.DomainEventStopped, int32(libvirt.DomainEventStoppedDestroyed))
	return nil
}

func (f *fakeLibvirt) DomainReset(dom libvirt.Domain, _ uint32) error {
	return f.transition("reset", dom, libvirt.DomainRunning, libvirt.DomainRunning)
}

func (f *fakeLibvirt) DomainSuspend(dom libvirt.Domain) error {
	if err := f.transition("suspend", dom, libvirt.DomainPaused, libvirt.DomainRunning); err != nil {
		return err
	}
	f.emit(dom.Name, libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedPaused))
	return nil
}

func (f *fakeLibvirt) DomainResume(dom libvirt.Domain) error {
	if err := f.transition("resume", dom, libvirt.DomainRunning, libvirt.DomainPaused); err != nil {
		return err
	}
	f.emit(dom.Name, libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedUnpaused))
	return nil
}

func (f *fakeLibvirt) DomainShutdownFlags(dom libvirt.Domain, _ libvirt.DomainShutdownFlagValues) error {
	// The fake guest obeys the power button at once.
	if err := f.transition("shutdown", dom, libvirt.DomainShutoff, libvirt.DomainRunning); err != nil {
		return err
	}
	f.emit(dom.Name, libvirt.DomainEventStopped, int32(libvirt.DomainEventStoppedShutdown))
	return nil
}

func (f *fakeLibvirt) DomainGetState(dom libvirt.Domain, _ uint32) (int32, int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return 0, 0, err
	}
	return int32(d.state), 0, nil
}

func (f *fakeLibvirt) DomainUndefineFlags(dom libvirt.Domain, _ libvirt.DomainUndefineFlagsValues) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("undefine %s", dom.Name)
	if _, err := f.get(dom); err != nil {
		return err
	}
	delete(f.domains, dom.Name)
	return nil
}

func (f *fakeLibvirt) DomainLookupByName(name string) (libvirt.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.domains[name]; !ok {
		return libvirt.Domain{}, noDomain(name)
	}
	return libvirt.Domain{Name: name}, nil
}

func (f *fakeLibvirt) DomainGetXMLDesc(dom libvirt.Domain, _ libvirt.DomainXMLFlags) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return "", err
	}
	return d.xml, nil
}

func (f *fakeLibvirt) ConnectListAllDomains(int32, libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []libvirt.Domain
	for name := range f.domains {
		out = append(out, libvirt.Domain{Name: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, uint32(len(out)), nil
}

func (f *fakeLibvirt) LifecycleEvents(ctx context.Context) (<-chan libvirt.DomainEventLifecycleMsg, error) {
	out := make(chan libvirt.DomainEventLifecycleMsg)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-f.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func (f *fakeLibvirt) Disconnect() error { return nil }
