package campaign

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/labtest"
	"github.com/hostlab/hostlab/provision"
)

// testWriter sends progress lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestCampaignOnVMs runs a tiny real campaign (kill-server × 2, one lab),
// stops the runner after its first cell as Ctrl-C would, resumes it, and
// checks that results.jsonl holds each cell exactly once, in folders of
// their own.
func TestCampaignOnVMs(t *testing.T) {
	labtest.Require(t)
	base := labtest.Config(t, "")
	prefix := base.Name + "cvm-"
	base.Name = ""
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "campaign")
	t.Cleanup(func() {
		// Only the labs the campaign recorded as held (none when it ended
		// well): a lab of the same name is someone else's.
		f := &Folder{Dir: dir}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, name := range f.Labs() {
			cfg := base
			cfg.Name = name
			if err := lab.Down(ctx, cfg); err != nil {
				t.Errorf("down %s: %v", cfg.Name, err)
			}
		}
	})
	ctx, stop := context.WithTimeout(context.Background(), 6*time.Minute)
	defer stop()
	file := filepath.Join(tmp, "tiny.yaml")
	if err := os.WriteFile(file, []byte("scenarios: [kill-server]\nrepetitions: 2\nbudget: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(lab.HomeDir(), "cache")
	opts := LoadOptions{
		Resolve: func(ctx context.Context, pkg string) (string, error) {
			return provision.ResolveKernelPackage(ctx, cache, pkg)
		},
		Release: provision.PackageRelease,
	}
	f, err := Start(ctx, file, dir, LabSettings{MemoryMiB: 128, Accel: "auto", Grace: 5 * time.Second}, opts)
	if err != nil {
		t.Fatal(err)
	}
	backend := &VMBackend{Base: base}
	run := func(ctx context.Context, f *Folder, onRecord func(Record)) (*Outcome, error) {
		return Run(ctx, f, backend, RunOptions{Parallel: 1, LabPrefix: prefix, Log: labtest.Logger(t),
			Progress: testWriter{t}, OnRecord: onRecord})
	}

	first, cancel := context.WithCancel(ctx)
	t0 := time.Now()
	oc, err := run(first, f, func(Record) { cancel() })
	cancel()
	if !errors.Is(err, context.Canceled) || oc == nil || oc.Ran != 1 {
		t.Fatalf("first run: %+v, %v; want one cell, then interrupted", oc, err)
	}
	f.Close()
	t.Logf("first run: 1 cell in %s", time.Since(t0).Round(time.Second))
	if n := len(resultLines(t, dir)); n != 1 {
		t.Fatalf("%d lines after the interrupt; want 1", n)
	}

	g, err := Open(ctx, dir, provision.PackageRelease)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	oc, err = run(ctx, g, nil)
	if err != nil || oc.Ran != 1 || len(oc.Left) != 0 {
		t.Fatalf("resume: %+v, %v; want the one missing cell", oc, err)
	}
	recs := resultLines(t, dir)
	if len(recs) != 2 {
		t.Fatalf("%d lines; want 2", len(recs))
	}
	if recs[0].ID == recs[1].ID || recs[0].RunDir == recs[1].RunDir {
		t.Errorf("cells %s (%s) and %s (%s): want two cells in two run folders", recs[0].ID, recs[0].RunDir, recs[1].ID, recs[1].RunDir)
	}
	for _, r := range recs {
		if !r.Complete || r.KernelRelease == "" || r.MeetsBudget == nil || r.Observed.DetectS == nil {
			t.Errorf("cell %s: complete %v, kernel %q, meets %v, observed %+v", r.ID, r.Complete, r.KernelRelease, r.MeetsBudget, r.Observed)
		}
		if _, err := os.Stat(filepath.Join(r.RunDir, "result.json")); err != nil || !strings.HasPrefix(r.RunDir, g.RunsDir(r.ID)) {
			t.Errorf("cell %s run folder %s: %v", r.ID, r.RunDir, err)
		}
		t.Logf("%s: %s, %s at %.3f s, lab %s, took %.1f s", r.ID, r.Verdict, r.Observed.Error, *r.Observed.DetectS, r.Lab, r.TookS)
	}
	if labs := g.Labs(); len(labs) != 0 {
		t.Errorf("labs.json still lists %v", labs)
	}
	t.Logf("campaign with an interrupt and a resume: %s", time.Since(t0).Round(time.Second))
}
