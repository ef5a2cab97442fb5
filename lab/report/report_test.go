package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var fixedNow = func() time.Time { return time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC) }

func TestLoadFixtureCampaign(t *testing.T) {
	dir := fixtureCampaign(t)
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notes) != 0 {
		t.Errorf("notes = %q, want none", c.Notes)
	}
	want := 0
	for _, cell := range fixtureCells {
		want += len(cell.runs)
	}
	if len(c.Runs) != want {
		t.Fatalf("%d runs, want %d", len(c.Runs), want)
	}
	for _, r := range c.Runs {
		if r.Dir == "" {
			t.Errorf("run %s: folder not found from run_dir %s", r.Key(), r.RunDir)
		} else if !strings.HasPrefix(r.Dir, dir) {
			t.Errorf("run %s: folder %s outside the campaign", r.Key(), r.Dir)
		}
	}
	var got Counts
	for _, r := range c.Runs {
		got.Add(r.Status)
	}
	// What the recordings say: see testdata/README.md.
	if want := (Counts{Expected: 26, Unexpected: 4, Unknown: 3, Incomplete: 1}); got != want {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
}

func TestLoadTornLastLine(t *testing.T) {
	dir := fixtureCampaign(t)
	p := filepath.Join(dir, ResultsFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	last := lines[len(lines)-1]
	// The power went while the last line was half written.
	torn := strings.Join(lines[:len(lines)-1], "\n") + "\n" + last[:len(last)/2]
	if err := os.WriteFile(p, []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "torn") {
		t.Fatalf("notes = %q, want one about the torn last line", c.Notes)
	}
	// The torn line's run folder is still there: it shows, as a run the
	// campaign did not record, counted with its cell.
	var orphan *Run
	for _, r := range c.Runs {
		if r.Line == 0 {
			if orphan != nil {
				t.Fatalf("two runs without a line: %s, %s", orphan.Key(), r.Key())
			}
			orphan = r
		}
	}
	if orphan == nil {
		t.Fatal("the torn line's run folder is not reported")
	}
	if orphan.VariantName != "--server-sigterm ignore" || orphan.Kernel != "linux-image-amd64" {
		t.Errorf("orphan run counted with %q / %q, want its cell's variant and kernel", orphan.VariantName, orphan.Kernel)
	}
	if len(orphan.Problems) == 0 {
		t.Error("orphan run has no problem noted")
	}
	rep := Build(c, fixedNow())
	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "torn") {
		t.Error("the page does not mention the torn line")
	}
}

func TestLoadMissingAndBrokenRuns(t *testing.T) {
	dir := fixtureCampaign(t)
	// A line whose run folder is gone, a line with a bad verdict, and a
	// corrupt line in the middle.
	p := filepath.Join(dir, ResultsFile)
	b, _ := os.ReadFile(p)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = append(lines[:2], append([]string{
		`{"id":"gone/rep-1","scenario":"kill-server","kernel":"k","variant_name":"","rep":1,"verdict":"expected","complete":true,"run_dir":"/nowhere/runs/gone"}`,
		`{"id":"odd/rep-1","scenario":"kill-server","kernel":"k","variant_name":"","rep":1,"verdict":"maybe","complete":true}`,
		`{"id": oops`,
	}, lines[2:]...)...)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "line 5") {
		t.Errorf("notes = %q, want one about line 5", c.Notes)
	}
	byKey := map[string]*Run{}
	for _, r := range c.Runs {
		byKey[r.Key()] = r
	}
	if r := byKey["gone/rep-1"]; r == nil || r.Dir != "" || len(r.Problems) == 0 || r.Status != StatusExpected {
		t.Errorf("run with a missing folder: %+v", r)
	}
	if r := byKey["odd/rep-1"]; r == nil || r.Status != StatusUnknown {
		t.Errorf("run with an unknown verdict name: %+v", r)
	}
	if _, _, err := Write(dir, Options{Now: fixedNow}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPlainRuns(t *testing.T) {
	// A bench folder: VARIANT/rep-K/TIMESTAMP-SCENARIO, no results.jsonl.
	dir := t.TempDir()
	copyTree(t, "testdata/runs/b/kill-server", filepath.Join(dir, "kill-server", "rep-1"))
	copyTree(t, "testdata/runs/b/kill-server-read-event", filepath.Join(dir, "kill-server-read-event", "rep-1"))
	copyTree(t, "testdata/runs/cut/power-off", filepath.Join(dir, "power-off", "rep-1"))
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Plain || len(c.Runs) != 3 {
		t.Fatalf("plain = %v, %d runs; want a plain folder of 3", c.Plain, len(c.Runs))
	}
	var names []string
	for _, f := range Figures(c) {
		names = append(names, f.Title())
	}
	if got, want := strings.Join(names, " | "), "kill-server --read event | kill-server | power-off"; got != want {
		t.Errorf("cells %q, want %q", got, want)
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("an empty folder loads without error")
	}
}

func TestOptionFlags(t *testing.T) {
	c, err := Load("testdata/runs/fx/po-ut6")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Runs[0].VariantName, "--user-timeout 6s --sysctl client:net.ipv4.tcp_thin_linear_timeouts=0 --sysctl client:net.ipv4.tcp_retries2=15"; got != want {
		t.Errorf("variant %q, want %q", got, want)
	}
}

func TestWriteFiles(t *testing.T) {
	dir := fixtureCampaign(t)
	files, rep, err := Write(dir, Options{CSV: true, JSON: true, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("wrote %q, want 3 files", files)
	}
	html, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	page := string(html)
	// Self-contained: nothing fetched from anywhere.
	for _, re := range []string{`<script`, `<link`, `src="http`, `href="http`, `url\(http`, `@import`} {
		if regexp.MustCompile(re).MatchString(page) {
			t.Errorf("page has %s", re)
		}
	}
	// The answer comes first: the headline before the summary, the summary
	// before the per-run sections.
	iHead, iSum, iAtt, iRuns := strings.Index(page, "as expected;"), strings.Index(page, `id="summary"`), strings.Index(page, `id="attention"`), strings.Index(page, `id="runs"`)
	if !(iHead > 0 && iHead < iSum && iSum < iAtt && iAtt < iRuns) {
		t.Errorf("page order: headline %d, summary %d, attention %d, runs %d", iHead, iSum, iAtt, iRuns)
	}
	// Every unexpected or unknown run is listed with its why and a link to
	// its section, which exists.
	for _, r := range rep.Attention() {
		if !strings.Contains(page, `href="#`+r.Anchor()+`"`) || !strings.Contains(page, `id="`+r.Anchor()+`"`) {
			t.Errorf("run %s: no link to its section", r.Key())
		}
	}
	if n := strings.Count(page, `class="plot timeline-plot"><svg`); n != len(rep.Campaign.Runs) {
		t.Errorf("%d run plots, want %d", n, len(rep.Campaign.Runs))
	}
	if n := strings.Count(page, `class="plot detection-plot"><svg`); n != len(rep.Figures) {
		t.Errorf("%d detection plots, want %d", n, len(rep.Figures))
	}
	f, _ := os.Open(filepath.Join(dir, CSVFile))
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+len(rep.Campaign.Runs) || len(recs[0]) != len(csvHeader) {
		t.Errorf("csv: %d lines of %d fields", len(recs), len(recs[0]))
	}
	var js jsonReport
	b, _ := os.ReadFile(filepath.Join(dir, JSONFile))
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	if js.Totals.Total() != len(rep.Campaign.Runs) || len(js.Runs) != len(rep.Campaign.Runs) {
		t.Errorf("json: totals %+v, %d runs", js.Totals, len(js.Runs))
	}
}

func TestPlannedCells(t *testing.T) {
	dir := fixtureCampaign(t)
	cells := make([]map[string]any, 40)
	for i := range cells {
		cells[i] = map[string]any{"id": itoa(i)}
	}
	b, _ := json.Marshal(map[string]any{"cells": cells})
	if err := os.WriteFile(filepath.Join(dir, CampaignFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(c, fixedNow())
	if c.Planned != 40 || rep.Pending() != "6 runs of the 40 planned have no result yet (still running, or cut off)." {
		t.Errorf("planned %d, pending %q", c.Planned, rep.Pending())
	}
	if err := os.WriteFile(filepath.Join(dir, CampaignFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(dir); err != nil || c.Planned != 0 || len(c.Notes) != 1 {
		t.Errorf("unreadable campaign.json: planned %d, notes %q, err %v", c.Planned, c.Notes, err)
	}
}

func TestLoadOneRunFolder(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "testdata/runs/b/power-off/20261203T180705Z-power-off", dir)
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Runs) != 1 || c.Runs[0].Status != StatusExpected || c.Runs[0].Dir != c.Dir {
		t.Fatalf("runs %+v", c.Runs)
	}
}

func TestTimelineWithoutFolder(t *testing.T) {
	// A line whose run folder is gone and that has no fault instant: the
	// wire ladder's absolute times cannot be placed and are left out.
	dir := fixtureCampaign(t)
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Runs {
		if r.Result.WireLadder != nil {
			r.Dir, r.FaultAt = "", time.Time{}
			tl := runTimeline(r)
			if tl.LadderFrom == "wire" || tl.XMax > 1e6 || tl.XMin < -1e6 {
				t.Errorf("%s: ladder from %q, axis %v..%v", r.Key(), tl.LadderFrom, tl.XMin, tl.XMax)
			}
			return
		}
	}
	t.Fatal("no run with a wire ladder")
}
