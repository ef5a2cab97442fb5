package scenario

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hostlab/hostlab/lab/model"
	"github.com/hostlab/hostlab/lab/timeline"
)

// fixtureDir holds real run folders, trimmed to what a verdict reads:
// result.json, the timeline's client, server, host, console and server
// sock_diag events, and
// the client's capture of the connection.
const fixtureDir = "testdata/runs"

// TestRecordFixtures copies the run folders under $HOSTLAB_RECORD_FIXTURES
// (each NAME/TIMESTAMP-SCENARIO) into testdata/runs/NAME, trimmed. It only
// runs when asked: HOSTLAB_RECORD_FIXTURES=/path go test -run TestRecordFixtures.
func TestRecordFixtures(t *testing.T) {
	src := os.Getenv("HOSTLAB_RECORD_FIXTURES")
	if src == "" {
		t.Skip("set HOSTLAB_RECORD_FIXTURES to a folder of recorded runs to refresh testdata/runs")
	}
	names, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		runs, _ := filepath.Glob(filepath.Join(src, n.Name(), "*-*"))
		if len(runs) != 1 {
			t.Logf("%s: %d run folders, skipped", n.Name(), len(runs))
			continue
		}
		dst := filepath.Join(fixtureDir, n.Name())
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := trimRun(runs[0], dst); err != nil {
			t.Fatalf("%s: %v", n.Name(), err)
		}
		t.Logf("recorded %s from %s", dst, runs[0])
	}
}

// trimRun copies what a verdict reads from one run folder to dst.
func trimRun(run, dst string) error {
	b, err := os.ReadFile(filepath.Join(run, "result.json"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "result.json"), b, 0o644); err != nil {
		return err
	}
	in, err := os.Open(filepath.Join(run, timeline.FileName))
	if err != nil {
		return err
	}
	defer in.Close()
	var keep []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var e struct {
			Src string `json:"src"`
			Ev  string `json:"ev"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch e.Src {
		case timeline.SrcClient, timeline.SrcServer, timeline.SrcHost, timeline.SrcConsoleServer, timeline.SrcSockdiagServer:
			keep = append(keep, sc.Text())
		}
	}
	if err := os.WriteFile(filepath.Join(dst, timeline.FileName), []byte(strings.Join(keep, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	ev, _, err := LoadEvidence(run)
	if err != nil {
		return err
	}
	frames, err := readFrames(filepath.Join(run, wireFile))
	if err != nil {
		return err
	}
	// Keep the connection's frames and ICMP from the run's start.
	con, _ := ev.connectEvent()
	local, _ := parseEndpoint(con.Local)
	peer, _ := parseEndpoint(con.Peer)
	var out []pcapRecord
	keepOwn := ownFrames(ev)
	for _, f := range frames {
		if f.At.Before(ev.Started) {
			continue
		}
		if keepOwn != nil {
			if keepOwn(f) {
				out = append(out, f)
			}
			continue
		}
		_, icmp := parseICMPUnreach(f.Data)
		if icmp || len(tcpSegments([]pcapRecord{f}, local, peer, ev.Started)) == 1 {
			out = append(out, f)
		}
	}
	return writeFramesPcap(filepath.Join(dst, wireFile), out)
}

// fixtures lists the recorded runs.
func fixtures(t *testing.T) []string {
	t.Helper()
	ds, err := os.ReadDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		if d.IsDir() {
			out = append(out, d.Name())
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatal("no recorded runs in " + fixtureDir)
	}
	return out
}

// judgeFixture re-judges a recorded run with rules k.
func judgeFixture(t *testing.T, name string, k Rules) (Decision, *Result) {
	t.Helper()
	ev, res, err := LoadEvidence(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Lookup(res.Scenario)
	if err != nil {
		t.Fatal(err)
	}
	return Judge(s, ev, k), res
}

// wantKernel is the verdict the kernel's rules must give on each recorded
// run: every one agrees with the kernel, except the run hostlab stopped
// itself (--max-wait) before the client could learn: unknown.
func wantKernel(name string) model.Verdict {
	if strings.HasPrefix(name, "stopped-") {
		return model.Unknown
	}
	return model.Expected
}

// TestKernelRulesOnRecordedRuns: Linux's rules agree with every recorded
// real run.
func TestKernelRulesOnRecordedRuns(t *testing.T) {
	for _, name := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			d, _ := judgeFixture(t, name, Kernel)
			t.Logf("%s: %s", d.Verdict, d.Why)
			if want := wantKernel(name); d.Verdict != want {
				t.Errorf("kernel rules give %s, want %s: %s", d.Verdict, want, d.Why)
			}
		})
	}
}

// TestWrongRulesRejected: each wrong model is unexpected on at least one
// recorded run, so the verdicts can fail.
func TestWrongRulesRejected(t *testing.T) {
	names := fixtures(t)
	for _, k := range WrongRules {
		t.Run(k.Name, func(t *testing.T) {
			var rejected []string
			for _, name := range names {
				d, _ := judgeFixture(t, name, k)
				if d.Verdict == model.Unexpected {
					rejected = append(rejected, name)
					t.Logf("rejected by %s: %s", name, d.Why)
				}
			}
			if len(rejected) == 0 {
				t.Errorf("the wrong model %q passes every recorded run", k.Name)
			}
			if slices.Contains(rejected, "") {
				t.Fatal("unnamed fixture")
			}
		})
	}
}
