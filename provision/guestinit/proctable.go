package guestinit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// orphanTTL bounds how long the status of an unregistered pid is kept.
const orphanTTL = 30 * time.Second

// ProcTable starts child processes and delivers their exit statuses. As PID 1
// it owns the only wait4(-1) in the process (see NewReapingProcTable), so that
// orphans are reaped without racing with the waits of our own children;
// exec.Cmd.Wait is never called.
type ProcTable struct {
	mu      sync.Mutex
	reapAll bool
	procs   map[int]*Proc
	orphans map[int]orphan
	logf    func(format string, args ...any)
}

type orphan struct {
	status unix.WaitStatus
	at     time.Time
}

// Proc is a child process started through a ProcTable.
type Proc struct {
	Pid    int
	cmd    *exec.Cmd
	done   chan struct{}
	status unix.WaitStatus
}

// Done returns a channel closed when the process has been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait blocks until the process has been reaped and returns its wait status.
func (p *Proc) Wait() unix.WaitStatus {
	<-p.done
	return p.status
}

// NewProcTable returns a table that waits for each child it starts with
// wait4(pid) and leaves other processes alone: the mode for a process that is
// not PID 1, such as a test.
func NewProcTable() *ProcTable {
	return &ProcTable{procs: map[int]*Proc{}, orphans: map[int]orphan{}}
}

// NewReapingProcTable returns a table whose reaper handles SIGCHLD with
// wait4(-1, WNOHANG), reaping orphans too: the mode for PID 1. logf, if not
// nil, receives one line per reaped orphan.
func NewReapingProcTable(logf func(format string, args ...any)) *ProcTable {
	t := NewProcTable()
	t.reapAll, t.logf = true, logf
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	go func() {
		tick := time.NewTicker(5 * time.Second) // backstop; SIGCHLD does the work
		defer tick.Stop()
		for {
			t.reapAvailable()
			select {
			case <-sigs:
			case <-tick.C:
			}
		}
	}()
	return t
}

// Start starts cmd and registers its pid. The caller must not call cmd.Wait;
// cmd's standard streams must be nil or *os.File, so that exec starts no
// copying goroutines that only Wait would end.
func (t *ProcTable) Start(cmd *exec.Cmd) (*Proc, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Proc{Pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	if o, ok := t.orphans[p.Pid]; ok { // reaped before we got here
		delete(t.orphans, p.Pid)
		p.finish(o.status)
		return p, nil
	}
	t.procs[p.Pid] = p
	if !t.reapAll {
		go t.waitOne(p.Pid)
	}
	return p, nil
}

func (p *Proc) finish(ws unix.WaitStatus) {
	p.status = ws
	_ = p.cmd.Process.Release()
	close(p.done)
}

// dispatch hands a reaped status to its Proc, or keeps it briefly.
func (t *ProcTable) dispatch(pid int, ws unix.WaitStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.procs[pid]; ok {
		delete(t.procs, pid)
		p.finish(ws)
		return
	}
	now := time.Now()
	for opid, o := range t.orphans {
		if now.Sub(o.at) > orphanTTL {
			delete(t.orphans, opid)
		}
	}
	t.orphans[pid] = orphan{status: ws, at: now}
	if t.logf != nil {
		t.logf("reaped orphan pid %d (%s)", pid, describeStatus(ws))
	}
}

func (t *ProcTable) waitOne(pid int) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil { // ECHILD: someone else reaped it; report a kill
			ws = unix.WaitStatus(unix.SIGKILL)
		}
		t.dispatch(pid, ws)
		return
	}
}

func (t *ProcTable) reapAvailable() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		t.dispatch(pid, ws)
	}
}
