package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// NewPlan makes the plan of a campaign file checked by Load: data is the
// file's content, recorded by its hash.
func NewPlan(spec *Spec, data []byte, labs LabSettings) *Plan {
	plan := Expand(spec, fileSHA(data), labs)
	if abs, err := filepath.Abs(spec.Path); err == nil {
		plan.File = abs
	}
	return plan
}

// Start reads and checks the campaign file at path — refusing a bad one
// with every problem, file, line and field, before any VM starts — and
// makes dir its folder (Create).
func Start(ctx context.Context, path, dir string, labs LabSettings, opt LoadOptions) (*Folder, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read campaign file: %w", err)
	}
	spec, err := Load(ctx, path, data, opt)
	if err != nil {
		return nil, err
	}
	return Create(dir, data, spec, NewPlan(spec, data, labs))
}

// ReadFolder reads a campaign folder without taking it (it may be running):
// its plan and finished cells; a torn last line is ignored.
func ReadFolder(dir string) (*Plan, map[string]Record, error) {
	var plan Plan
	b, err := os.ReadFile(filepath.Join(dir, FilePlan))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %v", dir, ErrNotCampaign, err)
	}
	if err := json.Unmarshal(b, &plan); err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %s: %v", dir, ErrNotCampaign, FilePlan, err)
	}
	done := map[string]Record{}
	b, err = os.ReadFile(filepath.Join(dir, FileResults))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	recs, _, err := parseResults(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", FileResults, err)
	}
	for _, r := range recs {
		if _, dup := done[r.ID]; !dup {
			done[r.ID] = r
		}
	}
	return &plan, done, nil
}

// Estimate is the time a plan's cells take at parallel labs before any has
// run: the model's detection for each, PriorOverhead besides, and a lab
// bring-up per kind of lab.
func Estimate(plan *Plan, parallel int) time.Duration {
	return newEstimator().eta(plan.Cells, nil, parallel, nil)
}

// RunnerSettings are the runner settings remembered in a campaign folder, so that a resume runs
// as the campaign was started unless told otherwise.
type RunnerSettings struct {
	Parallel    int           `json:"parallel"`
	LabPrefix   string        `json:"lab_prefix"`
	MaxLateness time.Duration `json:"max_lateness_ns"`
}

const fileRunner = "runner.json"

// SaveRunner remembers the runner's settings (atomically).
func (f *Folder) SaveRunner(s RunnerSettings) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(f.Dir, fileRunner), append(b, '\n'))
}

// Runner returns the settings of the folder's last runner (zero when none).
func (f *Folder) Runner() RunnerSettings {
	var s RunnerSettings
	if b, err := os.ReadFile(filepath.Join(f.Dir, fileRunner)); err == nil {
		_ = json.Unmarshal(b, &s)
	}
	return s
}
