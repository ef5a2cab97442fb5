package probes

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ClockName is the argv[0] basename under which the multi-call binary runs ClockMain.
const ClockName = "hostlab-clock"

// errClockReply marks a reply that is not "REALTIME_NS MONOTONIC_NS".
var errClockReply = errors.New("malformed clock reply")

// ClockMain runs hostlab-clock on stdin and stdout with the given arguments
// (without argv[0]; it takes none) and returns its exit code.
func ClockMain(args []string) int {
	if len(args) != 0 {
		fmt.Fprintf(os.Stderr, "usage: %s (no arguments) answers each line of stdin with \"REALTIME_NS MONOTONIC_NS\"\n", ClockName)
		return 2
	}
	if err := ServeClock(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ClockName, err)
		return 1
	}
	return 0
}

// ServeClock answers each line read from r, as soon as it arrives, with one
// write to w of the CLOCK_REALTIME and CLOCK_MONOTONIC readings taken then,
// and returns nil at the end of r. A last line without a newline is answered
// too.
func ServeClock(r io.Reader, w io.Writer) error {
	br := bufio.NewReader(r)
	buf := make([]byte, 0, 48)
	for {
		data, err := br.ReadSlice('\n')
		got := len(data) > 0
		for errors.Is(err, bufio.ErrBufferFull) { // an overlong line is one probe
			data, err = br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read probe: %w", err)
		}
		if got || len(data) > 0 {
			real, mono := clockNow()
			buf = appendClockReply(buf[:0], real, mono)
			if _, werr := w.Write(buf); werr != nil {
				return fmt.Errorf("write reply: %w", werr)
			}
		}
		if err != nil {
			return nil
		}
	}
}

// clockNow reads CLOCK_REALTIME, then CLOCK_MONOTONIC, in nanoseconds.
func clockNow() (real, mono int64) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME, &ts) == nil {
		real = ts.Nano()
	}
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		mono = ts.Nano()
	}
	return real, mono
}

// appendClockReply appends the reply line "REALTIME_NS MONOTONIC_NS\n".
func appendClockReply(b []byte, real, mono int64) []byte {
	b = strconv.AppendInt(b, real, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, mono, 10)
	return append(b, '\n')
}

// ParseClockReply parses one hostlab-clock reply line, with or without its
// newline, into the guest's CLOCK_REALTIME and CLOCK_MONOTONIC nanoseconds.
func ParseClockReply(line string) (real, mono int64, err error) {
	rs, ms, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	if !ok {
		return 0, 0, fmt.Errorf("%w: %q", errClockReply, line)
	}
	if real, err = strconv.ParseInt(rs, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%w: %q: realtime: %w", errClockReply, line, err)
	}
	if mono, err = strconv.ParseInt(ms, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%w: %q: monotonic: %w", errClockReply, line, err)
	}
	return real, mono, nil
}
