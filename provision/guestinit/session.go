package guestinit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// drainTimeout bounds how long output is still forwarded after the session
// process exited, in case a background child keeps its stdout open.
const drainTimeout = 2 * time.Second

// session is one SSH session channel and the process it runs.
type session struct {
	srv  *SSHServer
	conn *ssh.ServerConn
	ch   ssh.Channel

	mu      sync.Mutex
	env     []string
	pty     *ptyRequest // nil unless a pty was requested
	ptmx    *os.File
	proc    *Proc
	started bool
}

type ptyRequest struct {
	Term                 string
	Cols, Rows, PxW, PxH uint32
	Modes                string
}

type windowChange struct{ Cols, Rows, PxW, PxH uint32 }

func (s *SSHServer) serveSession(sc *ssh.ServerConn, nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		s.logf("ssh: accept session from %s: %v", sc.RemoteAddr(), err)
		return
	}
	ss := &session{srv: s, conn: sc, ch: ch}
	for req := range reqs {
		ok, after := ss.handle(req)
		if req.WantReply {
			_ = req.Reply(ok, nil)
		}
		if after != nil {
			go s.guard("ssh session "+req.Type, after)
		}
	}
	// The channel is closed: by us once the process ended, or by the client
	// or a dropped connection while it still runs.
	ss.hangup()
}

// handle serves one channel request; after, if not nil, runs once the reply
// has been sent (it sends exit-status and closes the channel).
func (ss *session) handle(req *ssh.Request) (ok bool, after func()) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch req.Type {
	case "env":
		var kv struct{ Name, Value string }
		if ssh.Unmarshal(req.Payload, &kv) != nil || kv.Name == "" || strings.Contains(kv.Name, "=") {
			return false, nil
		}
		ss.env = append(ss.env, kv.Name+"="+kv.Value)
		return true, nil
	case "pty-req":
		var p ptyRequest
		if ss.started || ssh.Unmarshal(req.Payload, &p) != nil {
			return false, nil
		}
		ss.pty = &p
		return true, nil
	case "window-change":
		var w windowChange
		if ssh.Unmarshal(req.Payload, &w) != nil || ss.pty == nil {
			return false, nil
		}
		ss.pty.Cols, ss.pty.Rows = w.Cols, w.Rows
		if ss.ptmx != nil {
			_ = setWinsize(ss.ptmx, w.Cols, w.Rows)
		}
		return true, nil
	case "shell", "exec":
		var c struct{ Command string }
		if req.Type == "exec" && ssh.Unmarshal(req.Payload, &c) != nil {
			return false, nil
		}
		return ss.startProcess(req.Type, c.Command)
	case "subsystem":
		var sub struct{ Name string }
		if ss.started || ssh.Unmarshal(req.Payload, &sub) != nil || sub.Name != "sftp" {
			return false, nil
		}
		return ss.startSFTP()
	case "signal":
		var sig struct{ Signal string }
		if ssh.Unmarshal(req.Payload, &sig) != nil {
			return false, nil
		}
		return ss.signal(sig.Signal) == nil, nil
	}
	return false, nil
}

// startProcess starts the shell (command empty for a shell request) with a pty
// if one was requested, else with pipes. Called with ss.mu held.
func (ss *session) startProcess(kind, command string) (bool, func()) {
	if ss.started {
		return false, nil
	}
	ss.started = true
	cmd := exec.Command(ss.srv.Shell, "-l")
	if kind == "exec" {
		cmd = exec.Command(ss.srv.Shell, "-c", command)
		ss.srv.logf("ssh: %s exec %q", ss.conn.RemoteAddr(), truncate(command, 200))
	} else {
		ss.srv.logf("ssh: %s shell", ss.conn.RemoteAddr())
	}
	cmd.Env = ss.environ()
	cmd.Dir = homeDir()
	var (
		outputs []*os.File
		err     error
	)
	if ss.pty != nil {
		outputs, err = ss.startPty(cmd)
	} else {
		outputs, err = ss.startPipes(cmd)
	}
	if err != nil {
		ss.srv.logf("ssh: %s: %v", ss.conn.RemoteAddr(), err)
		fmt.Fprintf(ss.ch.Stderr(), "hostlab-init: %v\r\n", err)
		return false, nil
	}
	proc := ss.proc
	return true, func() { ss.finish(proc, outputs) }
}

func (ss *session) startPty(cmd *exec.Cmd) ([]*os.File, error) {
	ptmx, tty, err := openPty()
	if err != nil {
		return nil, err
	}
	defer tty.Close()
	_ = setWinsize(ptmx, ss.pty.Cols, ss.pty.Rows)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if ss.proc, err = ss.srv.procs.Start(cmd); err != nil {
		ptmx.Close()
		return nil, err
	}
	ss.ptmx = ptmx
	go func() { _, _ = io.Copy(ptmx, ss.ch) }()
	return []*os.File{ptmx}, nil
}

func (ss *session) startPipes(cmd *exec.Cmd) ([]*os.File, error) {
	var ends [6]*os.File // stdin r,w; stdout r,w; stderr r,w
	for i := 0; i < 6; i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(ends[:i]...)
			return nil, fmt.Errorf("create pipe: %w", err)
		}
		ends[i], ends[i+1] = r, w
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ends[0], ends[3], ends[5]
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var err error
	ss.proc, err = ss.srv.procs.Start(cmd)
	closeAll(ends[0], ends[3], ends[5])
	if err != nil {
		closeAll(ends[1], ends[2], ends[4])
		return nil, err
	}
	go func() {
		_, _ = io.Copy(ends[1], ss.ch) // client EOF becomes stdin EOF
		ends[1].Close()
	}()
	return []*os.File{ends[2], ends[4]}, nil
}

// finish waits for the process, forwards the rest of its output, reports its
// exit the way OpenSSH does and closes the channel.
func (ss *session) finish(proc *Proc, outputs []*os.File) {
	var wg sync.WaitGroup
	dests := []io.Writer{ss.ch, ss.ch.Stderr()}
	for i, f := range outputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(dests[i], f)
		}()
	}
	ws := proc.Wait()
	for _, f := range outputs {
		if f.SetReadDeadline(time.Now().Add(drainTimeout)) != nil {
			time.AfterFunc(drainTimeout, func() { f.Close() })
		}
	}
	wg.Wait()
	closeAll(outputs...)
	ss.srv.logf("ssh: %s process %d ended: %s", ss.conn.RemoteAddr(), proc.Pid, describeStatus(ws))
	sendExit(ss.ch, ws)
	_ = ss.ch.CloseWrite()
	_ = ss.ch.Close()
}

// signal delivers the named SSH signal (e.g. "TERM") to the session's process
// group.
func (ss *session) signal(name string) error {
	sig := unix.SignalNum("SIG" + name)
	if sig == 0 {
		return fmt.Errorf("unknown signal %q", name)
	}
	return ss.killGroup(sig)
}

// killGroup signals the process group of a running session process. Called
// with ss.mu held.
func (ss *session) killGroup(sig unix.Signal) error {
	if ss.proc == nil {
		return errors.New("no process")
	}
	select {
	case <-ss.proc.Done():
		return errors.New("process ended")
	default:
	}
	if err := unix.Kill(-ss.proc.Pid, sig); err != nil {
		return fmt.Errorf("kill process group %d: %w", ss.proc.Pid, err)
	}
	return nil
}

// hangup sends SIGHUP to a process still running when its channel went away.
func (ss *session) hangup() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.killGroup(unix.SIGHUP) == nil {
		ss.srv.logf("ssh: %s gone, sent SIGHUP to process group %d", ss.conn.RemoteAddr(), ss.proc.Pid)
		if ss.ptmx != nil {
			ss.ptmx.Close()
		}
	}
}

func (ss *session) environ() []string {
	env := []string{
		"PATH=/bin:/sbin:/usr/bin:/usr/sbin",
		"HOME=" + homeDir(), "USER=root", "LOGNAME=root", "SHELL=" + ss.srv.Shell,
	}
	if h, p, err := net.SplitHostPort(ss.conn.RemoteAddr().String()); err == nil {
		if lh, lp, err := net.SplitHostPort(ss.conn.LocalAddr().String()); err == nil {
			env = append(env, "SSH_CLIENT="+h+" "+p+" "+lp, "SSH_CONNECTION="+h+" "+p+" "+lh+" "+lp)
		}
	}
	if ss.pty != nil && ss.pty.Term != "" {
		env = append(env, "TERM="+ss.pty.Term)
	}
	return append(env, ss.env...)
}

func homeDir() string {
	if fi, err := os.Stat("/root"); err == nil && fi.IsDir() {
		return "/root"
	}
	return "/"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			_ = f.Close()
		}
	}
}
