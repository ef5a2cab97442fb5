package echo

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// SchemaVersion is the value of every event's "v" field.
const SchemaVersion = 1

// Event is one JSON line written by the echo programs.
type Event struct {
	V        int       `json:"v"`
	Ev       string    `json:"ev"`
	MonoNS   int64     `json:"mono_ns"`
	RealNS   int64     `json:"real_ns"`
	Role     string    `json:"role,omitempty"`
	PID      int       `json:"pid,omitempty"`
	ChildPID int       `json:"child_pid,omitempty"`
	Op       string    `json:"op,omitempty"`
	Seq      int       `json:"seq,omitempty"`
	Bytes    int       `json:"bytes,omitempty"`
	Errno    string    `json:"errno,omitempty"`
	Err      string    `json:"err,omitempty"`
	Local    string    `json:"local,omitempty"`
	Peer     string    `json:"peer,omitempty"`
	Status   *int      `json:"status,omitempty"`
	Signal   string    `json:"signal,omitempty"`
	Code     *int      `json:"code,omitempty"`
	Outcome  string    `json:"outcome,omitempty"`
	Action   string    `json:"action,omitempty"`
	Mode     string    `json:"mode,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Args     []string  `json:"args,omitempty"`
	TCPInfo  *TCPInfo  `json:"tcp_info,omitempty"`
	Sockopts *Sockopts `json:"sockopts,omitempty"`
}

// Writer serialises events as JSON lines, one write(2) per line, so lines from
// goroutines and from processes sharing the same pipe never interleave.
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	role string
	pid  int
}

// NewWriter returns a Writer that stamps events with role and the current pid.
func NewWriter(w io.Writer, role string) *Writer {
	return &Writer{w: w, role: role, pid: os.Getpid()}
}

// Now returns the CLOCK_MONOTONIC and CLOCK_REALTIME readings in nanoseconds.
func Now() (mono, real int64) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		mono = ts.Nano()
	}
	if unix.ClockGettime(unix.CLOCK_REALTIME, &ts) == nil {
		real = ts.Nano()
	}
	return mono, real
}

// Emit timestamps e, fills in the version, role and pid if unset, and writes it.
func (w *Writer) Emit(e Event) {
	e.MonoNS, e.RealNS = Now()
	w.emitStamped(e)
}

// emitStamped writes e with the stamps it carries: taken when what it
// reports was read, earlier than the write.
func (w *Writer) emitStamped(e Event) {
	e.V = SchemaVersion
	if e.Role == "" {
		e.Role = w.role
	}
	if e.PID == 0 {
		e.PID = w.pid
	}
	b, err := json.Marshal(e)
	if err != nil {
		b = fmt.Appendf(nil, `{"v":%d,"ev":"error","op":"marshal","err":%q}`, SchemaVersion, err.Error())
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = w.w.Write(b)
}

// EmitErr writes an error event for op, classifying err.
func (w *Writer) EmitErr(op string, seq int, err error) {
	w.Emit(Event{Ev: "error", Op: op, Seq: seq, Errno: Classify(err), Err: err.Error()})
}

func intp(v int) *int { return &v }
