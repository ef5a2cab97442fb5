package guestinit

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Logger writes timestamped init log lines to the console and stderr.
type Logger struct {
	mu   sync.Mutex
	name string
	outs []io.Writer
}

// NewLogger returns a Logger that prefixes lines with name and writes them to
// every writer in outs.
func NewLogger(name string, outs ...io.Writer) *Logger {
	return &Logger{name: name, outs: outs}
}

// SetName changes the name shown in each line (the guest name once known).
func (l *Logger) SetName(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.name = name
}

// SetOutputs replaces the writers that receive every line.
func (l *Logger) SetOutputs(outs ...io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outs = outs
}

// recoverLog logs a panic of the calling goroutine instead of letting it
// crash PID 1; use it as a deferred call.
func recoverLog(l *Logger, what string) {
	if r := recover(); r != nil {
		l.Logf("panic in %s (recovered): %v\n%s", what, r, debug.Stack())
	}
}

// Logf writes one line: hostlab-init[MONO] NAME REALTIME: message.
func (l *Logger) Logf(format string, args ...any) {
	line := FormatLine(l.nameNow(), Monotonic(), time.Now(), fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.outs {
		_, _ = io.WriteString(w, line)
	}
}

func (l *Logger) nameNow() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.name
}

// FormatLine renders one log line with the monotonic clock in seconds (six
// decimals) and the wall clock in RFC 3339 with nanoseconds, in UTC.
func FormatLine(name string, mono time.Duration, wall time.Time, msg string) string {
	return fmt.Sprintf("hostlab-init[%d.%06d] %s %s: %s\n",
		mono/time.Second, (mono%time.Second)/time.Microsecond, name,
		wall.UTC().Format(time.RFC3339Nano), msg)
}

// Monotonic returns CLOCK_MONOTONIC, the time since boot without suspend.
func Monotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// reserveStdio occupies each of fds 0-2 that is closed (the kernel found no
// initial console) with a placeholder, so that no file opened later lands
// there, and reports whether it did.
func reserveStdio() bool {
	reserved := false
	for fd := 0; fd <= 2; fd++ {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			continue
		}
		if nfd, err := unix.Open("/", unix.O_PATH|unix.O_CLOEXEC, 0); err == nil {
			reserved = true
			if nfd != fd {
				_ = unix.Dup2(nfd, fd)
				_ = unix.Close(nfd)
			}
		}
	}
	return reserved
}

// consoleOutputs opens /dev/console for writing and returns the writers the
// init logger uses: the console, plus stderr unless stderr already is the
// console (so that each line, notably the ready line, appears exactly once).
// With reserved (see reserveStdio), fds 0-2 are pointed at the console so that
// Go runtime crash output is not lost.
func consoleOutputs(reserved bool) []io.Writer {
	cons, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return []io.Writer{os.Stderr}
	}
	if reserved {
		for fd := 0; fd <= 2; fd++ {
			_ = unix.Dup2(int(cons.Fd()), fd)
		}
		return []io.Writer{cons}
	}
	var cst, est unix.Stat_t
	if unix.Fstat(2, &est) == nil && unix.Fstat(int(cons.Fd()), &cst) == nil &&
		est.Mode&unix.S_IFMT == unix.S_IFCHR && cst.Rdev == est.Rdev {
		return []io.Writer{cons}
	}
	return []io.Writer{cons, os.Stderr}
}
