package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportCommand writes the report of a folder of plain runs through the
// command line, with both extra files.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	src, err := filepath.Glob("../../lab/report/testdata/runs/b/kill-server/*")
	if err != nil || len(src) != 1 {
		t.Fatalf("fixture: %v %v", src, err)
	}
	dst := filepath.Join(dir, "kill-server", "rep-1", filepath.Base(src[0]))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"result.json", "timeline.jsonl", "client.wire.pcap"} {
		b, err := os.ReadFile(filepath.Join(src[0], f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := newRootCmd()
	root.SetArgs([]string{"report", dir, "--csv", "--json"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.html", "report.csv", "report.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "kill-server") {
			t.Errorf("%s does not name the run's scenario", f)
		}
	}
	root = newRootCmd()
	root.SetArgs([]string{"report", t.TempDir()})
	if err := root.Execute(); err == nil {
		t.Error("an empty folder gives no error")
	}
}
