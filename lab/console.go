package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// ReadyMarker is the line the guest init prints on the console when its SSH
// server listens.
const ReadyMarker = "hostlab-init: ready"

// consoleTail returns the last n lines of a console log, for error messages.
func consoleTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(console unreadable: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// waitConsole polls a console log until it contains marker (after offset)
// or ctx ends or stop reports true.
func waitConsole(ctx context.Context, path string, offset int64, marker string, stop func() bool) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil && int64(len(b)) > offset {
			if bytes.Contains(b[offset:], []byte(marker)) {
				return nil
			}
		}
		if stop != nil && stop() {
			return fmt.Errorf("guest stopped before printing %q", marker)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %q on %s: %w", marker, path, ctx.Err())
		case <-t.C:
		}
	}
}

// qemuUser returns the uid and gid QEMU runs as under qemu:///system on
// Debian, if that user exists.
func qemuUser() (int, int, bool) {
	u, err := user.Lookup("libvirt-qemu")
	if err != nil {
		return 0, 0, false
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	return uid, gid, err1 == nil && err2 == nil
}
