package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// golden compares v, as indented JSON with dir replaced by DIR, with
// testdata/name; -update rewrites it.
func golden(t *testing.T, name, dir string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(bytes.ReplaceAll(b, []byte(dir), []byte("DIR")), '\n')
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./lab/report -update)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s differs from what the code gives now; if the change is meant, run go test ./lab/report -update and review the diff:\n%s", p, firstDiff(string(want), string(b)))
	}
}

// firstDiff shows the first differing line.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + itoa(i+1) + ":\n  want " + a + "\n  got  " + b
		}
	}
	return ""
}

func TestDetectionsGolden(t *testing.T) {
	dir := fixtureCampaign(t)
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ds []Detection
	for _, f := range Figures(c) {
		ds = append(ds, Detections(f))
	}
	golden(t, "detections.golden", dir, ds)
}

func TestTimelinesGolden(t *testing.T) {
	dir := fixtureCampaign(t)
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tls []Timeline
	for _, r := range c.Runs {
		tls = append(tls, runTimeline(r))
	}
	golden(t, "timelines.golden", dir, tls)
}

func TestTimelineOfPowerOff(t *testing.T) {
	dir := fixtureCampaign(t)
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var r *Run
	for _, x := range c.Runs {
		if x.ID == "power-off-sysctl-client-net-ipv4-tcp-retries2-5/linux-image-amd64/rep-3" {
			r = x
		}
	}
	if r == nil {
		t.Fatal("fixture run not found")
	}
	tl := runTimeline(r)
	// The wire ladder of tcp_retries2=5: five RTO retransmissions, each
	// RTO twice the one before, after one tail-loss probe.
	if tl.LadderFrom != "wire" || len(tl.Rungs) != 5 || len(tl.TLP) != 1 {
		t.Fatalf("ladder from %q: %d rungs, %d probes", tl.LadderFrom, len(tl.Rungs), len(tl.TLP))
	}
	for i := 1; i < len(tl.Rungs); i++ {
		if a, b := tl.Rungs[i-1], tl.Rungs[i]; b.T <= a.T || b.RTO != 2*a.RTO {
			t.Errorf("rung %d %+v after %+v: not a doubling ladder", i, b, a)
		}
	}
	// The fault was pinned (the pause), inside the fault call, and the
	// client learnt inside the predicted window.
	if tl.Origin != "fault_at" || tl.Pinned == nil || tl.Fault == nil || tl.Fault.Lo > tl.Pinned.Lo {
		t.Errorf("fault: origin %s, pinned %+v, call %+v", tl.Origin, tl.Pinned, tl.Fault)
	}
	if tl.Learnt == nil || tl.Window == nil || tl.Learnt.T < tl.Window.Lo || tl.Learnt.T > tl.Window.Hi {
		t.Errorf("learnt %+v, window %+v", tl.Learnt, tl.Window)
	}
	if tl.XMin > *tl.Sent || tl.XMax < tl.Window.Hi {
		t.Errorf("axis %.3f..%.3f does not hold the send %.3f and the window %+v", tl.XMin, tl.XMax, *tl.Sent, tl.Window)
	}
}

func TestTimelineOfInterrupted(t *testing.T) {
	// No result.json and a cut timeline: the plot still has the client's
	// writes and the fault, and says what is missing.
	tl := runTimeline(&Run{Dir: "testdata/runs/cut/power-off/20261203T190000Z-power-off", key: "cut"})
	if tl.Fault == nil || len(tl.Writes) == 0 || tl.Learnt != nil {
		t.Errorf("fault %+v, %d writes, learnt %+v", tl.Fault, len(tl.Writes), tl.Learnt)
	}
	if len(tl.Notes) == 0 || !strings.Contains(tl.Notes[0], "torn") {
		t.Errorf("notes %q, want the torn timeline named", tl.Notes)
	}
	if tl := runTimeline(&Run{key: "none"}); tl.Origin != "start" || len(tl.Notes) == 0 {
		t.Errorf("a run without a folder: %+v", tl)
	}
}

func TestDetectionsKernelsSideBySide(t *testing.T) {
	dir := fixtureCampaign(t)
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Relabel the third repetition of every cell as run on another kernel
	// (the fixtures all ran 6.1): each figure gets a lane per kernel.
	for _, r := range c.Runs {
		if r.Rep == 3 {
			r.Kernel, r.KernelRelease = "linux-image-6.12-amd64", "6.12.9-amd64"
		}
	}
	for _, f := range Figures(c) {
		d := Detections(f)
		kernels := map[string]bool{}
		for _, r := range append([]*Run(nil), flatten(f)...) {
			kernels[r.Kernel] = true
		}
		if len(d.Lanes) != len(kernels) {
			t.Errorf("%s: %d lanes for %d kernels", f.Title(), len(d.Lanes), len(kernels))
		}
		for i, ln := range d.Lanes {
			if ln.Y != float64(len(d.Lanes)-1-i) {
				t.Errorf("%s: lane %d at y %v", f.Title(), i, ln.Y)
			}
			for _, dt := range ln.Dots {
				if dt.Y < ln.Y-laneHalf || dt.Y > ln.Y+laneHalf {
					t.Errorf("%s: dot %s at y %v outside its lane at %v", f.Title(), dt.Run, dt.Y, ln.Y)
				}
			}
		}
	}
	rep := Build(c, fixedNow())
	if !(len(rep.Kernels()) == 2) {
		t.Fatalf("kernels %q", rep.Kernels())
	}
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "<th>kernel</th>") || !strings.Contains(b.String(), "6.12.9-amd64") {
		t.Error("the summary has no kernel column for a campaign over two kernels")
	}
}

func TestDetectionsSummary(t *testing.T) {
	f := &Figure{Scenario: "power-off", Groups: []*Group{{Kernel: "k"}}}
	g := f.Groups[0]
	for i, d := range []float64{3, 1, 2} {
		d := d
		p := 1.5
		r := &Run{Row: Row{Rep: i + 1}, HasResult: true, Status: StatusExpected}
		r.Complete, r.Observed.DetectS, r.PredictedS = true, &d, &p
		g.add(r)
	}
	g.add(&Run{Row: Row{Rep: 4}, Status: StatusIncomplete})
	d := Detections(f)
	ln := d.Lanes[0]
	if *ln.Min != 1 || *ln.Median != 2 || *ln.Max != 3 || ln.Undetected != 1 || len(ln.Dots) != 3 {
		t.Errorf("lane %+v", ln)
	}
	if ln.Dots[0].Y <= ln.Dots[2].Y {
		t.Errorf("the first run is not on top: %+v", ln.Dots)
	}
	if d.XMin > 0 || d.XMin < -0.5 || d.XMax < 3 {
		t.Errorf("axis %v..%v", d.XMin, d.XMax)
	}
}

func flatten(f *Figure) []*Run {
	var out []*Run
	for _, g := range f.Groups {
		out = append(out, g.Runs...)
	}
	return out
}
