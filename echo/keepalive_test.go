package echo_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/echo/internal/proctest"
)

// requireIptables returns the iptables binary, skipping the test where a
// loopback peer cannot be silenced with it.
func requireIptables(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("silencing a loopback peer needs root for iptables")
	}
	ipt, err := exec.LookPath("iptables")
	if err != nil {
		t.Skip("silencing a loopback peer needs iptables, not found")
	}
	if out, err := exec.Command(ipt, "-w", "-L", "INPUT", "-n").CombinedOutput(); err != nil {
		t.Skipf("iptables unusable here (%v): %s", err, out)
	}
	return ipt
}

// dropToPort makes the loopback peer on port silent, as a crashed host is, by
// dropping every packet sent to it; t.Cleanup removes the rule.
func dropToPort(t *testing.T, ipt string, port int) {
	t.Helper()
	rule := []string{"INPUT", "-i", "lo", "-p", "tcp", "--dport", strconv.Itoa(port), "-j", "DROP"}
	if out, err := exec.Command(ipt, append([]string{"-w", "-I"}, rule...)...).CombinedOutput(); err != nil {
		t.Skipf("iptables cannot add a DROP rule (%v): %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ipt, append([]string{"-w", "-D"}, rule...)...).CombinedOutput(); err != nil {
			t.Errorf("remove iptables rule %v: %v: %s", rule, err, out)
		}
	})
}

func TestKeepaliveSilentPeer(t *testing.T) {
	ipt := requireIptables(t)
	addr := helperServer(t, func(c *net.TCPConn, r *bufio.Reader) { _, _ = r.ReadString('!') })
	cl := startClient(t, addr, "--idle", "--keepalive", "1s,1s,2")
	conn := cl.WaitFor(t, wait, "connect", proctest.Ev("connect"))
	if so := conn.Sockopts; so == nil || !so.Keepalive || so.KeepIdleS != 1 || so.KeepIntvlS != 1 || so.KeepCnt != 2 {
		t.Errorf("sockopts %+v, want keepalive 1,1,2", conn.Sockopts)
	}
	dropToPort(t, ipt, proctest.Port(t, addr))
	// Idle 1 s, then 2 unanswered probes 1 s apart: ETIMEDOUT after about 3 s.
	maxProbes := 0
	var end echo.Event
	for e := range cl.Events {
		if e.TCPInfo != nil && int(e.TCPInfo.Probes) > maxProbes {
			maxProbes = int(e.TCPInfo.Probes)
		}
		if e.Ev == "error" || e.Ev == "eof" {
			end = e
		}
	}
	if end.Ev != "error" || end.Op != "read" || end.Errno != "ETIMEDOUT" {
		t.Errorf("client ended with %+v, want read ETIMEDOUT", end)
	}
	if code := exitCode(t, cl); code != echo.ExitTimedOut {
		t.Errorf("exit %d, want %d", code, echo.ExitTimedOut)
	}
	if maxProbes == 0 {
		t.Errorf("no TCP_INFO sample showed an unanswered keepalive probe")
	}
}
