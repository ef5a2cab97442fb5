package guestinit

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Shutdown polling and reaping bounds.
const (
	shutdownPoll   = 100 * time.Millisecond
	reapAfterKill  = 2 * time.Second
	remainLogEvery = time.Second
)

// shutdown runs the classic sequence: SIGTERM to every process, wait up to
// grace for them to exit, SIGKILL to the rest, sync, reboot(2). It returns
// only if reboot(2) fails.
func shutdown(log *Logger, action PowerAction, grace time.Duration, reason string) {
	log.Logf("%s requested (%s): sending SIGTERM to all processes (grace %s)", action, reason, grace)
	if err := unix.Kill(-1, unix.SIGTERM); err != nil && err != unix.ESRCH {
		log.Logf("kill(-1, SIGTERM): %v", err)
	}
	remain := waitForExit(log, grace, "after SIGTERM")
	if remain > 0 {
		log.Logf("sending SIGKILL to %d remaining processes", remain)
		if err := unix.Kill(-1, unix.SIGKILL); err != nil && err != unix.ESRCH {
			log.Logf("kill(-1, SIGKILL): %v", err)
		}
		if n := waitForExit(log, reapAfterKill, "after SIGKILL"); n > 0 {
			log.Logf("%d processes survived SIGKILL; going on", n)
		}
	} else {
		log.Logf("all processes exited")
	}
	log.Logf("syncing file systems")
	unix.Sync()
	log.Logf("%s: calling reboot(2)", action)
	if err := unix.Reboot(action.rebootCmd()); err != nil {
		log.Logf("reboot(2) for %s failed: %v", action, err)
	}
}

// waitForExit polls /proc until no user process remains or timeout passes,
// logging the survivors about once a second, and returns how many remain.
func waitForExit(log *Logger, timeout time.Duration, phase string) int {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for {
		ps, err := UserProcesses("/proc")
		if err != nil {
			log.Logf("count processes: %v", err)
			return 0
		}
		if len(ps) == 0 {
			return 0
		}
		if time.Now().After(deadline) {
			log.Logf("%d processes remain %s: %s", len(ps), phase, describeProcs(ps))
			return len(ps)
		}
		if time.Since(lastLog) >= remainLogEvery {
			log.Logf("%d processes remain %s: %s", len(ps), phase, describeProcs(ps))
			lastLog = time.Now()
		}
		time.Sleep(shutdownPoll)
	}
}

// describeProcs renders up to ten processes as "pid(comm)".
func describeProcs(ps []ProcStat) string {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Pid < ps[j].Pid })
	var parts []string
	for i, p := range ps {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("... %d more", len(ps)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%d(%s)", p.Pid, p.Comm))
	}
	return strings.Join(parts, " ")
}
