package campaign

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/hostlab/hostlab/lab/scenario"
)

// PlanVersion is the version of campaign.json's schema.
const PlanVersion = 1

// LabSettings are how the campaign's labs are brought up, besides their
// kernel.
type LabSettings struct {
	MemoryMiB int           `json:"memory_mib"`
	Accel     string        `json:"accel"`
	Grace     time.Duration `json:"grace_ns"`
}

// Plan is a campaign resolved into cells: campaign.json.
type Plan struct {
	Version int `json:"version"`
	// File is the campaign file as named when the campaign started, and
	// FileDir the folder its relative paths are taken from.
	File    string `json:"file"`
	FileDir string `json:"file_dir"`
	// FileSHA256 is the hash of the file's content (campaign.yaml).
	FileSHA256  string      `json:"file_sha256"`
	Created     time.Time   `json:"created"`
	Repetitions int         `json:"repetitions"`
	BudgetS     *float64    `json:"budget_s"`
	Lab         LabSettings `json:"lab"`
	// Kernels are the kernels axis, resolved: a meta package to the
	// package it stood for when the campaign started (a resume keeps it).
	Kernels []Kernel `json:"kernels"`
	Cells   []Cell   `json:"cells"`
}

// Cell is one run of the campaign: a scenario, a kernel, a variant and a
// repetition.
type Cell struct {
	// ID names the cell, stable across resumes and across reorderings of
	// the file: scenario, a slug of the variant, a hash of scenario, kernel
	// as written and canonical variant, and the repetition.
	ID       string `json:"id"`
	Scenario string `json:"scenario"`
	// Kernel is the kernel as written; KernelRelease the release it
	// resolved to.
	Kernel        string `json:"kernel"`
	KernelRelease string `json:"kernel_release"`
	// Variant are hostlab run's flags as written; VariantName the same in
	// short, e.g. "--idle --keepalive 4s,2s,3".
	Variant     map[string]any `json:"variant"`
	VariantName string         `json:"variant_name"`
	// Args are hostlab run's flags.
	Args []string `json:"args"`
	Rep  int      `json:"rep"`
	// Routed says the cell needs a routed lab.
	Routed bool `json:"routed,omitempty"`

	kernel   int // index in Plan.Kernels
	variant  int // index in the spec's variants
	scenario scenario.Scenario
	opt      scenario.Options
	canon    string // canonical variant, for estimates
}

// labKind is the lab a cell needs: a kernel, with or without a router.
type labKind struct {
	kernel int
	routed bool
}

func (c Cell) kind() labKind { return labKind{c.kernel, c.Routed} }

// Expand makes the plan of spec: the cross product of scenarios, kernels,
// variants and repetitions, ordered kernel by kernel (plain labs first),
// repetition by repetition, then scenario and variant in file order.
func Expand(spec *Spec, fileSHA string, lab LabSettings) *Plan {
	p := &Plan{Version: PlanVersion, File: spec.Path, FileDir: spec.Dir, FileSHA256: fileSHA,
		Created: time.Now().UTC(), Repetitions: spec.Repetitions, Lab: lab, Kernels: spec.Kernels}
	if spec.Budget > 0 {
		b := spec.Budget.Seconds()
		p.BudgetS = &b
	}
	for ki, k := range spec.Kernels {
		for _, routed := range []bool{false, true} {
			for rep := 1; rep <= spec.Repetitions; rep++ {
				for _, s := range spec.Scenarios {
					if s.Routed != routed {
						continue
					}
					for vi, v := range spec.Variants {
						canon := strings.Join(v.Canonical, "\x00")
						p.Cells = append(p.Cells, Cell{
							ID:       cellID(s.Name, k.Written, v.Canonical, rep),
							Scenario: s.Name, Kernel: k.Written, KernelRelease: k.Release,
							Variant: v.Flags, VariantName: v.Name, Args: v.Args, Rep: rep, Routed: s.Routed,
							kernel: ki, variant: vi, scenario: s, opt: v.Options, canon: s.Name + "\x00" + canon,
						})
					}
				}
			}
		}
	}
	return p
}

// cellID names a cell (see Cell.ID).
func cellID(scen, kernel string, canonical []string, rep int) string {
	canon := strings.Join(canonical, "\x00")
	sum := sha256.Sum256([]byte("hostlab campaign cell v1\x00" + scen + "\x00" + kernel + "\x00" + canon))
	label := "defaults"
	if len(canonical) > 0 {
		label = strings.Join(canonical, " ")
	}
	v := slug(strings.NewReplacer("net.ipv4.", "", "net.ipv6.", "", "net.core.", "").Replace(label))
	if len(v) > 32 {
		v = strings.TrimRight(v[:32], "-.")
	}
	return fmt.Sprintf("%s-%s-%s-r%d", scen, v, hex.EncodeToString(sum[:4]), rep)
}

// slug makes a file name part of a label: lowercase letters, digits and
// dots, other runs as one dash.
func slug(label string) string {
	var sb strings.Builder
	dash := false
	for _, c := range strings.ToLower(label) {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.'
		if !ok {
			dash = sb.Len() > 0
			continue
		}
		if dash {
			sb.WriteByte('-')
			dash = false
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

// ids lists the plan's cell ids in order.
func (p *Plan) ids() []string {
	out := make([]string, len(p.Cells))
	for i, c := range p.Cells {
		out[i] = c.ID
	}
	return out
}

// cell finds a cell by id.
func (p *Plan) cell(id string) (Cell, bool) {
	for _, c := range p.Cells {
		if c.ID == id {
			return c, true
		}
	}
	return Cell{}, false
}

// axes describes the plan's shape, e.g. "1 scenario × 2 kernels × 3
// variants × 3 repetitions".
func (p *Plan) axes(spec *Spec) string {
	n := func(k int, one string) string {
		if k == 1 {
			return fmt.Sprintf("%d %s", k, one)
		}
		return fmt.Sprintf("%d %ss", k, one)
	}
	return strings.Join([]string{n(len(spec.Scenarios), "scenario"), n(len(spec.Kernels), "kernel"),
		n(len(spec.Variants), "variant"), n(spec.Repetitions, "repetition")}, " × ")
}
