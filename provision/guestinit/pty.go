package guestinit

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/creack/pty"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// openPty opens a pty pair. creack/pty leaves the master in blocking mode (it
// calls Fd), where a pending Read ignores deadlines and Close; so the master
// is re-wrapped as a non-blocking, pollable *os.File.
func openPty() (ptmx, tty *os.File, err error) {
	m, tty, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	defer m.Close()
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		tty.Close()
		return nil, nil, fmt.Errorf("dup pty master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		tty.Close()
		return nil, nil, fmt.Errorf("set pty master non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), tty, nil
}

// setWinsize sets the terminal size of the pty whose master is f, without
// putting f back into blocking mode.
func setWinsize(f *os.File, cols, rows uint32) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("set window size: %w", err)
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(rows), Col: uint16(cols)})
	})
	if err = errors.Join(err, ierr); err != nil {
		return fmt.Errorf("set window size: %w", err)
	}
	return nil
}

// startSFTP serves the sftp subsystem in-process over the channel. Called
// with ss.mu held.
func (ss *session) startSFTP() (bool, func()) {
	srv, err := sftp.NewServer(ss.ch)
	if err != nil {
		ss.srv.logf("ssh: sftp: %v", err)
		return false, nil
	}
	ss.started = true
	return true, func() {
		err := srv.Serve()
		status := uint32(0)
		if err != nil && !errors.Is(err, io.EOF) {
			ss.srv.logf("ssh: %s sftp: %v", ss.conn.RemoteAddr(), err)
			status = 1
		}
		_, _ = ss.ch.SendRequest("exit-status", false, ssh.Marshal(&struct{ Status uint32 }{status}))
		_ = srv.Close()
		_ = ss.ch.Close()
	}
}
