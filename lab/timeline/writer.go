package timeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// FileName is the name of the timeline file in a run's folder.
const FileName = "timeline.jsonl"

// ErrClosed is returned by a Writer used after Close.
var ErrClosed = errors.New("timeline writer closed")

// endData is the data of the timeline_end event.
type endData struct {
	Complete bool   `json:"complete"`
	Reason   string `json:"reason,omitempty"`
}

// Writer appends events to a timeline file, one JSON line per event written
// with a single write call, so a crash leaves at most the last line cut off.
// It is safe for concurrent use.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	closed bool
}

// Create creates the timeline file at path (which must not exist) and writes
// the timeline_start record stamped at with info (nil for none) as its data.
func Create(path string, at time.Time, info any) (*Writer, error) {
	start, err := NewEvent(SrcHost, EvTimelineStart, at, info)
	if err != nil {
		return nil, fmt.Errorf("create timeline %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create timeline: %w", err)
	}
	w := &Writer{f: f, path: path}
	if err := w.Write(start); err != nil {
		_ = f.Close()
		return nil, err
	}
	return w, nil
}

// Path returns the file the writer appends to.
func (w *Writer) Path() string { return w.path }

// Write appends one event, filling in the schema version when it is 0.
func (w *Writer) Write(e Event) error {
	if e.V == 0 {
		e.V = SchemaVersion
	}
	if err := e.Validate(); err != nil {
		return fmt.Errorf("write timeline %s: %w", w.path, err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("write timeline %s: marshal %s/%s: %w", w.path, e.Src, e.Ev, err)
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("write timeline %s: %w", w.path, ErrClosed)
	}
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("write timeline %s: %w", w.path, err)
	}
	return nil
}

// Close writes the timeline_end record stamped at, saying whether the run
// completed and, if not, why; then it syncs and closes the file.
func (w *Writer) Close(at time.Time, complete bool, reason string) error {
	end, err := NewEvent(SrcHost, EvTimelineEnd, at, endData{Complete: complete, Reason: reason})
	if err != nil {
		return fmt.Errorf("close timeline %s: %w", w.path, err)
	}
	werr := w.Write(end)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("close timeline %s: %w", w.path, ErrClosed)
	}
	w.closed = true
	serr := w.f.Sync()
	cerr := w.f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("close timeline %s: %w", w.path, err)
	}
	return nil
}
