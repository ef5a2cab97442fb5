package vms

import (
	"context"
	"fmt"
	"strconv"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Event is one libvirt lifecycle event of a domain, stamped on arrival with
// the host's clock.
type Event struct {
	Time   time.Time `json:"time"`
	Domain string    `json:"domain"`
	Event  string    `json:"event"`
	Detail string    `json:"detail"`
}

var eventNames = [...]string{"defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown", "pmsuspended", "crashed"}

var stoppedDetails = [...]string{"shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from-snapshot"}

var shutdownDetails = [...]string{"finished", "guest", "host"}

func eventName(ev, detail int32) (string, string) {
	name := "event-" + strconv.Itoa(int(ev))
	if ev >= 0 && int(ev) < len(eventNames) {
		name = eventNames[ev]
	}
	d := strconv.Itoa(int(detail))
	switch libvirt.DomainEventType(ev) {
	case libvirt.DomainEventStopped:
		if detail >= 0 && int(detail) < len(stoppedDetails) {
			d = stoppedDetails[detail]
		}
	case libvirt.DomainEventShutdown:
		if detail >= 0 && int(detail) < len(shutdownDetails) {
			d = shutdownDetails[detail]
		}
	case libvirt.DomainEventStarted:
		if detail == int32(libvirt.DomainEventStartedBooted) {
			d = "booted"
		}
	}
	return name, d
}

// Events streams lifecycle events for every domain until ctx ends or the
// connection drops; the channel is closed then.
//
// The libvirt subscription itself lives until Close: libvirtd 9.0 crashes
// (segfault) when a client deregisters an event callback while it closes
// the connection, which is what cancelling a go-libvirt subscription right
// before Disconnect does. Closing with the callback still registered is the
// path libvirtd handles.
func (h *Hypervisor) Events(ctx context.Context) (<-chan Event, error) {
	var src <-chan libvirt.DomainEventLifecycleMsg
	err := callCtx(ctx, "subscribe to lifecycle events", func() error {
		var lerr error
		src, lerr = h.api.LifecycleEvents(h.life)
		return lerr
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to lifecycle events on %s: %w", h.uri, err)
	}
	out := make(chan Event, 64)
	go func() {
		// Drain src until it closes: go-libvirt blocks on an unread channel.
		defer func() {
			if out != nil {
				close(out)
			}
		}()
		for msg := range src {
			if out == nil {
				continue
			}
			name, detail := eventName(msg.Event, msg.Detail)
			ev := Event{Time: time.Now(), Domain: msg.Dom.Name, Event: name, Detail: detail}
			select {
			case out <- ev:
			case <-ctx.Done():
				close(out)
				out = nil
			}
		}
	}()
	return out, nil
}

// WaitState polls until the domain reaches want or ctx ends.
func (h *Hypervisor) WaitState(ctx context.Context, name string, want State) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := h.State(ctx, name)
		if err != nil {
			return err
		}
		if st == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for domain %s to be %s (is %s): %w", name, want, st, ctx.Err())
		case <-t.C:
		}
	}
}
