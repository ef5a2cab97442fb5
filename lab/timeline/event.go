package timeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// SchemaVersion is the version written in every event's "v" field.
const SchemaVersion = 1

// Event sources.
const (
	// SrcClient is the echo client in its guest.
	SrcClient = "client"
	// SrcServer is the echo server in its guest.
	SrcServer = "server"
	// SrcHost is hostlab itself on the host (faults, markers).
	SrcHost = "host"
	// SrcLibvirt is a libvirt domain event or operation.
	SrcLibvirt = "libvirt"
	// SrcSockdiagClient is a hostlab-sockstat record from the client guest:
	// a socket of the echo port from a sock_diag dump, with its tcp_info.
	SrcSockdiagClient = "sockdiag-client"
	// SrcSockdiagServer is a hostlab-sockstat record from the server guest.
	SrcSockdiagServer = "sockdiag-server"
	// SrcConsoleServer is a line of the server's serial console that marks a
	// step the verdicts use (SIGTERM, SIGKILL, link up), placed on the host
	// axis through the server's clock fit.
	SrcConsoleServer = "console-server"
)

// Reserved event names.
const (
	// EvTimelineStart is the first record of a timeline file.
	EvTimelineStart = "timeline_start"
	// EvTimelineEnd is the last record of a closed timeline file.
	EvTimelineEnd = "timeline_end"
	// EvFaultStart opens a fault window.
	EvFaultStart = "fault_start"
	// EvFaultEnd closes a fault window.
	EvFaultEnd = "fault_end"
)

// sources lists the valid values of Event.Src.
var sources = []string{SrcClient, SrcServer, SrcHost, SrcLibvirt, SrcSockdiagClient, SrcSockdiagServer, SrcConsoleServer}

// ErrInvalidEvent marks an event that does not fit the schema.
var ErrInvalidEvent = errors.New("invalid timeline event")

// Event is one record of a timeline; see the package documentation for the
// JSON schema.
type Event struct {
	// V is the schema version (SchemaVersion).
	V int `json:"v"`
	// Src says who recorded the event.
	Src string `json:"src"`
	// Ev is the event name.
	Ev string `json:"ev"`
	// HostNS is the event time in ns since the Unix epoch on the host clock.
	HostNS int64 `json:"host_ns"`
	// UncertNS is the ± bound on HostNS in ns.
	UncertNS int64 `json:"uncert_ns"`
	// MonoNS is the raw guest CLOCK_MONOTONIC stamp, if any.
	MonoNS int64 `json:"mono_ns,omitempty"`
	// RealNS is the raw guest CLOCK_REALTIME stamp, if any.
	RealNS int64 `json:"real_ns,omitempty"`
	// Data holds the event-specific fields as a JSON object.
	Data json.RawMessage `json:"data,omitempty"`
}

// NewEvent builds a host-stamped event with data marshalled from v (nil for
// none).
func NewEvent(src, ev string, at time.Time, v any) (Event, error) {
	e := Event{V: SchemaVersion, Src: src, Ev: ev, HostNS: at.UnixNano()}
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return Event{}, fmt.Errorf("new event %s/%s: marshal data: %w", src, ev, err)
		}
		if string(b) != "null" {
			e.Data = b
		}
	}
	return e, e.Validate()
}

// Host returns the event time on the host clock.
func (e Event) Host() time.Time { return time.Unix(0, e.HostNS) }

// Uncert returns the ± bound on the event time.
func (e Event) Uncert() time.Duration { return time.Duration(e.UncertNS) }

// DecodeData unmarshals the event's data into v.
func (e Event) DecodeData(v any) error {
	if len(e.Data) == 0 {
		return fmt.Errorf("decode data of %s/%s: no data: %w", e.Src, e.Ev, ErrInvalidEvent)
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decode data of %s/%s: %w", e.Src, e.Ev, err)
	}
	return nil
}

// Validate checks the event against the schema.
func (e Event) Validate() error {
	switch {
	case e.V != SchemaVersion:
		return fmt.Errorf("event %s/%s: schema version %d, want %d: %w", e.Src, e.Ev, e.V, SchemaVersion, ErrInvalidEvent)
	case !slices.Contains(sources, e.Src):
		return fmt.Errorf("event %q: unknown source %q: %w", e.Ev, e.Src, ErrInvalidEvent)
	case e.Ev == "":
		return fmt.Errorf("event from %s: empty name: %w", e.Src, ErrInvalidEvent)
	case e.UncertNS < 0:
		return fmt.Errorf("event %s/%s: negative uncertainty: %w", e.Src, e.Ev, ErrInvalidEvent)
	case len(e.Data) > 0 && (!json.Valid(e.Data) || e.Data[0] != '{'):
		return fmt.Errorf("event %s/%s: data is not a JSON object: %w", e.Src, e.Ev, ErrInvalidEvent)
	}
	return nil
}
