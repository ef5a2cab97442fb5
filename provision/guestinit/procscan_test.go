package guestinit

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		in      string
		want    ProcStat
		kthread bool
		wantErr bool
	}{
		{in: "1 (init) S 0 1 1 0 -1 4194560 10 0", want: ProcStat{1, "init", 'S', 0, 4194560}},
		{in: "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0", want: ProcStat{2, "kthreadd", 'S', 0, 2129984}, kthread: true},
		{in: "17 (kworker/0:1-events) I 2 0 0 0 -1 69238880 0", want: ProcStat{17, "kworker/0:1-events", 'I', 2, 69238880}, kthread: true},
		{in: "99 (odd) name)) R 1 99 99 34816 99 4194304 5\n", want: ProcStat{99, "odd) name)", 'R', 1, 4194304}},
		{in: "5 (flagged) S 0 0 0 0 -1 2097152", want: ProcStat{5, "flagged", 'S', 0, 2097152}, kthread: true},
		{in: "garbage", wantErr: true},
		{in: "12 (short) S 1 2", wantErr: true},
		{in: "x (bad pid) S 1 2 3 4 5 6", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseProcStat([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseProcStat(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != tt.want || got.KernelThread() != tt.kthread {
			t.Errorf("ParseProcStat(%q) = %+v kthread %v, want %+v kthread %v", tt.in, got, got.KernelThread(), tt.want, tt.kthread)
		}
	}
}

func TestUserProcessesFakeProc(t *testing.T) {
	root := t.TempDir()
	stats := map[string]string{
		"1":   "1 (init) S 0 1 1 0 -1 4194560 0",
		"2":   "2 (kthreadd) S 0 0 0 0 -1 2129984 0",
		"3":   "3 (rcu_gp) I 2 0 0 0 -1 69238880 0",
		"40":  "40 (sshd session) S 1 40 40 0 -1 4194560 0",
		"41":  "41 (sleep) S 40 40 40 0 -1 4194304 0",
		"42":  "42 (defunct) Z 40 40 40 0 -1 4227084 0",
		"43":  "43 (kthread-flag) S 0 0 0 0 -1 2097152 0",
		"sys": "not a pid",
	}
	for dir, stat := range stats {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "44"), 0o755); err != nil { // vanished process
		t.Fatal(err)
	}
	ps, err := UserProcesses(root)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range ps {
		pids = append(pids, p.Pid)
	}
	slices.Sort(pids)
	if !slices.Equal(pids, []int{40, 41}) {
		t.Errorf("user processes = %v, want [40 41]", pids)
	}
}

func TestUserProcessesCountsChildren(t *testing.T) {
	procs := NewProcTable()
	var started []*Proc
	for range 2 {
		p, err := procs.Start(exec.Command("sleep", "100"))
		if err != nil {
			t.Fatal(err)
		}
		started = append(started, p)
	}
	t.Cleanup(func() {
		for _, p := range started {
			_ = unix.Kill(p.Pid, unix.SIGKILL)
			p.Wait()
		}
	})
	mine := func() []int {
		ps, err := UserProcesses("/proc")
		if err != nil {
			t.Fatal(err)
		}
		var pids []int
		for _, p := range ps {
			if p.KernelThread() || p.Pid == 1 {
				t.Errorf("UserProcesses returned %+v", p)
			}
			if p.PPid == os.Getpid() {
				pids = append(pids, p.Pid)
			}
		}
		return pids
	}
	if got := mine(); len(got) != 2 {
		t.Fatalf("children counted = %v, want the 2 started", got)
	}
	for _, p := range started {
		if err := unix.Kill(p.Pid, unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if ws := p.Wait(); !ws.Signaled() || ws.Signal() != unix.SIGTERM {
			t.Errorf("pid %d status %s, want killed by SIGTERM", p.Pid, describeStatus(ws))
		}
	}
	if got := mine(); len(got) != 0 {
		t.Errorf("children counted after reaping = %v, want none", got)
	}
}
