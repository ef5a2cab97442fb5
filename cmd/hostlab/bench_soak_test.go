package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSoakProbeSeesOwnSockets opens a listener and a UDP socket and checks
// that the soak's probe counts them as this process's, and its fds.
func TestSoakProbeSeesOwnSockets(t *testing.T) {
	count := func() (fds, listening, udp int) {
		targets, err := fdTargets("self")
		if err != nil {
			t.Fatal(err)
		}
		l, _, u, err := countSockets(socketInodes(targets))
		if err != nil {
			t.Fatal(err)
		}
		return len(targets), l, u
	}
	fds0, l0, u0 := count()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	fds1, l1, u1 := count()
	if fds1 < fds0+2 || l1 != l0+1 || u1 != u0+1 {
		t.Errorf("after a listener and a UDP socket: fds %d→%d, listening %d→%d, udp %d→%d", fds0, fds1, l0, l1, u0, u1)
	}
	if pids, _ := qemuPIDs("hostlab-no-such-lab-"); len(pids) != 0 {
		t.Errorf("QEMU processes of no lab: %v", pids)
	}
}

func TestTreeBytesSkipsOut(t *testing.T) {
	home := t.TempDir()
	out := filepath.Join(home, "bench", "soak")
	os.MkdirAll(out, 0o755)
	os.WriteFile(filepath.Join(home, "a"), make([]byte, 100), 0o644)
	os.WriteFile(filepath.Join(out, "b"), make([]byte, 1000), 0o644)
	if got := treeBytes(home, out); got != 100 {
		t.Errorf("treeBytes without out = %d, want 100", got)
	}
	if got := treeBytes(home, ""); got != 1100 {
		t.Errorf("treeBytes = %d, want 1100", got)
	}
}

// TestSoakLeaks flags a metric that grows from the first run to the last,
// or that the lab leaves behind after it is down, and no other.
func TestSoakLeaks(t *testing.T) {
	p := func(fds, goroutines, domains int, labBytes int64) soakProbe {
		return soakProbe{FDs: fds, Goroutines: goroutines, Domains: domains, QEMU: domains, LabBytes: labBytes}
	}
	rep := soakReport{
		Rounds: 2, Round: soakRound,
		Start: p(7, 3, 0, 0),
		Runs: []soakRun{
			{Run: 1, Scenario: "crash-reboot", Verdict: "expected", After: p(11, 14, 2, 1000)},
			{Run: 2, Scenario: "power-off", Verdict: "expected", After: p(12, 9, 2, 3000)},
			{Run: 3, Scenario: "crash-reboot", Verdict: "failed", After: p(13, 14, 2, 5000), Replaced: true},
		},
		End:      &soakProbe{FDs: 7, Goroutines: 3, Domains: 1, QEMU: 0},
		Replaced: 1,
	}
	grew := map[string]bool{}
	for _, lk := range soakLeaks(rep) {
		grew[lk.Metric] = lk.Grew
	}
	want := map[string]bool{
		"open fds of hostlab":       true,  // 11, 12, 13: drifts up
		"goroutines of hostlab":     false, // 14, 9, 14: moves, back to 3 at the end
		"domains of the lab":        true,  // one left after down
		"QEMU processes of the lab": false,
		"lab folder":                true,
	}
	for m, w := range want {
		if grew[m] != w {
			t.Errorf("%s: grew %v, want %v", m, grew[m], w)
		}
	}
	rep.Leaks = soakLeaks(rep)
	var b bytes.Buffer
	if err := writeSoakReport(&b, rep, 4); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"1 not run", "failed (lab replaced)", "open fds of hostlab", "GROWS", "2.0 KiB per run", "no leak", "1 left after the lab is down", "replaced 1 time(s)"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
}
