package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrBusy reports that another hostlab process is running an experiment in
// the lab.
var ErrBusy = errors.New("lab is busy")

// Lock takes the lab for one experiment, so two runs never fault the same
// guests at once. The lock is an flock on the lab folder's run.lock: it
// dies with its process, so a killed run leaves no stale lock.
func (l *Lab) Lock() (unlock func(), err error) {
	path := filepath.Join(l.dir, "run.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock lab %s: %w", l.Name(), err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lab %s: %w with another run (pid %s): wait for it, or use another --lab", l.Name(), ErrBusy, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock lab %s: %w", l.Name(), err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
