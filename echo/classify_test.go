package echo

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func opErr(op string, errno error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
		code int
	}{
		{"nil", nil, "", ExitOK},
		{"eof", io.EOF, "EOF", ExitEOF},
		{"wrapped eof", fmt.Errorf("read line: %w", io.EOF), "EOF", ExitEOF},
		{"reset", opErr("read", unix.ECONNRESET), "ECONNRESET", ExitConnReset},
		{"pipe", opErr("write", unix.EPIPE), "EPIPE", ExitPipe},
		{"timedout", opErr("read", unix.ETIMEDOUT), "ETIMEDOUT", ExitTimedOut},
		{"hostunreach", opErr("read", unix.EHOSTUNREACH), "EHOSTUNREACH", ExitHostUnreach},
		{"netunreach", opErr("connect", unix.ENETUNREACH), "ENETUNREACH", ExitNetUnreach},
		{"refused", opErr("connect", unix.ECONNREFUSED), "ECONNREFUSED", ExitConnRefused},
		{"deadline", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "timeout", ExitReadTimeout},
		{"eagain", opErr("read", unix.EAGAIN), "timeout", ExitReadTimeout},
		{"closed", &net.OpError{Op: "read", Err: net.ErrClosed}, "closed", ExitOther},
		{"other errno", opErr("setsockopt", unix.EINVAL), "EINVAL", ExitOther},
		{"bare errno", unix.ENOTCONN, "ENOTCONN", ExitOther},
		{"not a socket error", errors.New("boom"), "unknown", ExitOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %q, want %q", tt.err, got, tt.want)
			}
			if got := ExitCode(tt.err); got != tt.code {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.code)
			}
		})
	}
}
