package echo

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Client exit codes, one per outcome; see the table in the package doc.
const (
	ExitOK          = 0
	ExitOther       = 1
	ExitUsage       = 2
	ExitEOF         = 10
	ExitConnReset   = 11
	ExitPipe        = 12
	ExitTimedOut    = 13
	ExitHostUnreach = 14
	ExitNetUnreach  = 15
	ExitConnRefused = 16
	ExitReadTimeout = 17
)

// classes maps the errnos the lab branches on to their names, in match order.
var classes = []struct {
	errno syscall.Errno
	name  string
	code  int
}{
	{unix.ECONNRESET, "ECONNRESET", ExitConnReset},
	{unix.EPIPE, "EPIPE", ExitPipe},
	{unix.ETIMEDOUT, "ETIMEDOUT", ExitTimedOut},
	{unix.EHOSTUNREACH, "EHOSTUNREACH", ExitHostUnreach},
	{unix.ENETUNREACH, "ENETUNREACH", ExitNetUnreach},
	{unix.ECONNREFUSED, "ECONNREFUSED", ExitConnRefused},
}

// Classify names the cause of a socket error: "EOF", an errno name such as
// "ECONNRESET", "timeout" for a passed deadline or EAGAIN, "closed" for use of
// a closed connection, or "unknown".
func Classify(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, io.EOF):
		return "EOF"
	}
	for _, c := range classes {
		if errors.Is(err, c.errno) {
			return c.name
		}
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, unix.EAGAIN):
		return "timeout"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
	}
	return "unknown"
}

// ExitCode returns the client exit code for a terminal error; a timeout maps
// to ExitReadTimeout and unlisted errors to ExitOther.
func ExitCode(err error) int {
	switch name := Classify(err); name {
	case "":
		return ExitOK
	case "EOF":
		return ExitEOF
	case "timeout":
		return ExitReadTimeout
	default:
		for _, c := range classes {
			if c.name == name {
				return c.code
			}
		}
	}
	return ExitOther
}
