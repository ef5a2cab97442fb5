package guestinit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pfKthread is the PF_KTHREAD bit of the flags field of /proc/PID/stat.
const pfKthread = 0x00200000

// ProcStat holds the fields of /proc/PID/stat that init needs.
type ProcStat struct {
	Pid   int
	Comm  string
	State byte
	PPid  int
	Flags uint64
}

// KernelThread reports whether the process is a kernel thread: kthreadd
// (pid 2), one of its children, or any task with PF_KTHREAD set.
func (s ProcStat) KernelThread() bool {
	return s.Pid == 2 || s.PPid == 2 || s.Flags&pfKthread != 0
}

// ParseProcStat parses the contents of a /proc/PID/stat file. The command
// name may contain spaces and parentheses; it ends at the last ')'.
func ParseProcStat(data []byte) (ProcStat, error) {
	open := bytes.IndexByte(data, '(')
	end := bytes.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return ProcStat{}, fmt.Errorf("parse stat %q: no command name", truncate(string(data), 80))
	}
	var s ProcStat
	var err error
	if s.Pid, err = strconv.Atoi(strings.TrimSpace(string(data[:open]))); err != nil {
		return ProcStat{}, fmt.Errorf("parse stat pid: %w", err)
	}
	s.Comm = string(data[open+1 : end])
	// Fields after the name: 3 state, 4 ppid, 5 pgrp, 6 session, 7 tty_nr,
	// 8 tpgid, 9 flags.
	f := strings.Fields(string(data[end+1:]))
	if len(f) < 7 || len(f[0]) != 1 {
		return ProcStat{}, fmt.Errorf("parse stat of pid %d: too few fields", s.Pid)
	}
	s.State = f[0][0]
	if s.PPid, err = strconv.Atoi(f[1]); err != nil {
		return ProcStat{}, fmt.Errorf("parse stat ppid of pid %d: %w", s.Pid, err)
	}
	if s.Flags, err = strconv.ParseUint(f[6], 10, 64); err != nil {
		return ProcStat{}, fmt.Errorf("parse stat flags of pid %d: %w", s.Pid, err)
	}
	return s, nil
}

// UserProcesses lists the processes under procRoot (normally /proc) that the
// shutdown sequence waits for: everything except PID 1, kernel threads and
// zombies (already dead, waiting to be reaped). Processes that vanish while
// the directory is read are skipped.
func UserProcesses(procRoot string) ([]ProcStat, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []ProcStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		data, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		s, err := ParseProcStat(data)
		if err != nil || s.KernelThread() || s.State == 'Z' || s.State == 'X' {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}
