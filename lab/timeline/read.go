package timeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTruncated reports a timeline whose last line is cut off; the events
// before it are still returned.
var ErrTruncated = errors.New("timeline truncated")

// ErrCorrupt reports a timeline line that is not a valid event.
var ErrCorrupt = errors.New("timeline corrupt")

// Read loads a timeline file. A last line that does not parse (a write cut
// off by a crash) is dropped and reported with an error wrapping
// ErrTruncated, alongside every event before it. Any other bad line stops
// the read with an error wrapping ErrCorrupt and the events read so far.
func Read(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	defer f.Close()
	var events []Event
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, rerr := r.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return events, fmt.Errorf("read timeline %s: line %d: %w", path, n, rerr)
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			e, perr := parse(t)
			if perr != nil {
				_, peekErr := r.Peek(1)
				if errors.Is(rerr, io.EOF) || errors.Is(peekErr, io.EOF) {
					return events, fmt.Errorf("read timeline %s: last line %d (%d bytes): %w: %w", path, n, len(line), ErrTruncated, perr)
				}
				return events, fmt.Errorf("read timeline %s: line %d: %w: %w", path, n, ErrCorrupt, perr)
			}
			events = append(events, e)
		}
		if rerr != nil {
			return events, nil
		}
	}
}

// parse decodes and validates one line.
func parse(line []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		return Event{}, err
	}
	return e, e.Validate()
}

// Completion reports whether a timeline ends with a timeline_end record that
// says the run completed, and the recorded reason otherwise.
func Completion(events []Event) (complete bool, reason string) {
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if e.Src != SrcHost || e.Ev != EvTimelineEnd {
			continue
		}
		var d endData
		if err := e.DecodeData(&d); err != nil {
			return false, "unreadable timeline_end record: " + err.Error()
		}
		return d.Complete, d.Reason
	}
	return false, "no timeline_end record: the writer was not closed"
}
