package probes

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the multi-call hostlab binary
// under argv[0] hostlab-clock or hostlab-sockstat.
func TestMain(m *testing.M) {
	switch filepath.Base(os.Args[0]) {
	case ClockName:
		os.Exit(ClockMain(os.Args[1:]))
	case SockstatName:
		os.Exit(SockstatMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// tool returns a command running the test binary under argv[0] name.
func tool(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, args...)
	cmd.Stderr = os.Stderr
	return cmd
}

// waitExit waits for cmd and returns its exit code, failing on a signal or
// a hang.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
			t.Fatalf("%s killed by %v", cmd.Path, ws.Signal())
		}
		return cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not exit", cmd.Path)
	}
	return -1
}

func TestClockMainProcess(t *testing.T) {
	cmd := tool(t, ClockName)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(stdout)
	for i := 0; i < 3; i++ {
		io.WriteString(stdin, "x\n")
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ParseClockReply(line); err != nil {
			t.Fatal(err)
		}
	}
	stdin.Close()
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit %d at EOF, want 0", code)
	}
	if code := waitExit(t, startTool(t, tool(t, ClockName, "extra"))); code != 2 {
		t.Errorf("with an argument: exit %d, want 2", code)
	}
}

func TestSockstatMainSignal(t *testing.T) {
	want := SourceSockDiag
	if _, err := dumpSockDiag(9); err != nil {
		want = SourceProcNet
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := tool(t, SockstatName, "--port", "9", "--interval", "10ms")
		stdout, _ := cmd.StdoutPipe()
		startTool(t, cmd)
		sc := bufio.NewScanner(stdout)
		var first, last SockRecord
		if !sc.Scan() || json.Unmarshal(sc.Bytes(), &first) != nil || first.Ev != "start" {
			t.Fatalf("first line %q, want a start event", sc.Text())
		}
		var src struct{ Ev, Source string }
		if !sc.Scan() || json.Unmarshal(sc.Bytes(), &src) != nil || src.Ev != "source" || src.Source != want {
			t.Fatalf("second line %q, want a source event naming %s", sc.Text(), want)
		}
		cmd.Process.Signal(sig)
		for sc.Scan() {
			if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
		}
		if code := waitExit(t, cmd); code != 0 || last.Ev != "exit" {
			t.Errorf("%v: exit %d, last event %q; want 0, exit", sig, code, last.Ev)
		}
	}
	if code := waitExit(t, startTool(t, tool(t, SockstatName))); code != 2 {
		t.Errorf("without --port: exit %d, want 2", code)
	}
}

func startTool(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}
