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
// One libvirt subscription per connection serves every caller: libvirt
// refuses a second identical callback on a connection ("event callback
// already tracked"). The subscription lives until Close, because libvirtd
// 9.0 crashes (segfault) when a client deregisters an event callback while
// it closes the connection, which is what cancelling a go-libvirt
// subscription right before Disconnect does. Closing with the callback still
// registered is the path libvirtd handles.
func (h *Hypervisor) Events(ctx context.Context) (<-chan Event, error) {
	h.evMu.Lock()
	defer h.evMu.Unlock()
	if h.evSubs == nil {
		var src <-chan libvirt.DomainEventLifecycleMsg
		err := callCtx(ctx, "subscribe to lifecycle events", func() error {
			var lerr error
			src, lerr = h.api.LifecycleEvents(h.life)
			return lerr
		})
		if err != nil {
			return nil, fmt.Errorf("subscribe to lifecycle events on %s: %w", h.uri, err)
		}
		h.evSubs = map[*eventSub]bool{}
		go h.pumpEvents(src)
	}
	sub := &eventSub{ch: make(chan Event, eventBuffer), ctx: ctx}
	h.evSubs[sub] = true
	go func() {
		select {
		case <-ctx.Done():
		case <-h.life.Done():
		}
		h.evMu.Lock()
		defer h.evMu.Unlock()
		if h.evSubs[sub] {
			delete(h.evSubs, sub)
			close(sub.ch)
		}
	}()
	return sub.ch, nil
}

// eventBuffer is how many events a subscriber may fall behind.
const eventBuffer = 256

// eventSub is one caller of Events.
type eventSub struct {
	ch  chan Event
	ctx context.Context
}

// pumpEvents fans the connection's events out to the subscribers until the
// subscription ends, then closes every subscriber's channel.
func (h *Hypervisor) pumpEvents(src <-chan libvirt.DomainEventLifecycleMsg) {
	// Drain src until it closes: go-libvirt blocks on an unread channel.
	for msg := range src {
		name, detail := eventName(msg.Event, msg.Detail)
		ev := Event{Time: time.Now(), Domain: msg.Dom.Name, Event: name, Detail: detail}
		h.evMu.Lock()
		for sub := range h.evSubs {
			select {
			case sub.ch <- ev:
			default: // A subscriber this far behind loses events rather than stalling the rest.
			}
		}
		h.evMu.Unlock()
	}
	h.evMu.Lock()
	defer h.evMu.Unlock()
	for sub := range h.evSubs {
		close(sub.ch)
	}
	h.evSubs = nil
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
