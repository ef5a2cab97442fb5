package campaign

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeKernels resolves like bookworm's apt lists.
var fakeKernels = map[string]string{
	"linux-image-amd64":                "linux-image-6.1.0-57-amd64",
	"linux-image-6.1.0-57-amd64":       "linux-image-6.1.0-57-amd64",
	"linux-image-6.12-amd64":           "linux-image-6.12.118+deb12-amd64",
	"linux-image-6.12.118+deb12-amd64": "linux-image-6.12.118+deb12-amd64",
	"linux-image-cloud-amd64":          "linux-image-6.1.0-57-cloud-amd64",
}

func fakeResolve(_ context.Context, pkg string) (string, error) {
	if p, ok := fakeKernels[pkg]; ok {
		return p, nil
	}
	return "", fmt.Errorf("kernel package %q: unknown kernel package: apt does not know it", pkg)
}

func fakeRelease(pkg string) (string, error) {
	rel, ok := strings.CutPrefix(pkg, "linux-image-")
	if !ok {
		return "", errors.New("not a kernel package")
	}
	return rel, nil
}

var fakeLoad = LoadOptions{Resolve: fakeResolve, Release: fakeRelease}

// load checks a campaign file's text as written in dir.
func load(t *testing.T, dir, text string) (*Spec, error) {
	t.Helper()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(context.Background(), path, nil, fakeLoad)
}

// issueExample is the campaign of issue #8, as written there.
const issueExample = `scenarios: [power-off]
kernels: [linux-image-amd64, linux-image-6.12-amd64]   # optional; default: the lab default
variants:
  - {idle: true, keepalive: "4s,2s,3"}
  - {user-timeout: 6s}
  - {sysctl: ["client:net.ipv4.tcp_retries2=5"]}
repetitions: 3
budget: 20s          # optional: the detection time the user needs; each cell meets it or misses it
`

func TestLoadIssueExample(t *testing.T) {
	spec, err := load(t, t.TempDir(), issueExample)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Scenarios) != 1 || len(spec.Kernels) != 2 || len(spec.Variants) != 3 || spec.Repetitions != 3 || spec.Budget != 20*time.Second {
		t.Fatalf("spec %+v", spec)
	}
	if k := spec.Kernels[1]; k.Written != "linux-image-6.12-amd64" || k.Package != "linux-image-6.12.118+deb12-amd64" || k.Release != "6.12.118+deb12-amd64" {
		t.Errorf("kernel resolved to %+v", k)
	}
	names := []string{"--idle --keepalive 4s,2s,3", "--user-timeout 6s", "--sysctl client:net.ipv4.tcp_retries2=5"}
	for i, v := range spec.Variants {
		if v.Name != names[i] {
			t.Errorf("variant %d named %q; want %q", i, v.Name, names[i])
		}
	}
	if o := spec.Variants[0].Options; !o.Idle || o.Keepalive != "4s,2s,3" {
		t.Errorf("variant 0 options %+v", o)
	}
	if o := spec.Variants[1].Options; o.UserTimeout != 6*time.Second {
		t.Errorf("variant 1 options %+v", o)
	}
	plan := Expand(spec, "sha", LabSettings{})
	if len(plan.Cells) != 18 {
		t.Fatalf("%d cells; want 1 scenario × 2 kernels × 3 variants × 3 repetitions = 18", len(plan.Cells))
	}
	seen := map[string]bool{}
	for _, c := range plan.Cells {
		if seen[c.ID] {
			t.Errorf("id %s twice", c.ID)
		}
		seen[c.ID] = true
		if !strings.HasPrefix(c.ID, "power-off-") || !strings.HasSuffix(c.ID, fmt.Sprintf("-r%d", c.Rep)) {
			t.Errorf("id %q does not name scenario and repetition", c.ID)
		}
	}
	if c := plan.Cells[0]; c.ID != "power-off-idle-keepalive-4s-2s-3-e87ceb0e-r1" || c.KernelRelease != "6.1.0-57-amd64" {
		t.Errorf("first cell %+v: ids must not change between hostlab versions", c)
	}
	if *plan.BudgetS != 20 {
		t.Errorf("budget %v", *plan.BudgetS)
	}
}

// TestIDsStable: a cell's id depends on its scenario, kernel as written,
// canonical variant and repetition only.
func TestIDsStable(t *testing.T) {
	dir := t.TempDir()
	ids := func(text string) map[string]bool {
		spec, err := load(t, dir, text)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, id := range Expand(spec, "", LabSettings{}).ids() {
			m[id] = true
		}
		return m
	}
	a := ids(issueExample)
	// Reordered, respelt (6000ms, idle: yes as true), commented, with an
	// extra scenario, kernel and variant.
	b := ids(`# the same campaign, written otherwise
budget: 30s
repetitions: 4
variants:
  - {sysctl: ["client:net.ipv4.tcp_retries2=5"]}
  - {user-timeout: 6000ms}
  - {read: event}
  - {keepalive: "4s,2s,3", idle: true}
kernels: [linux-image-6.12-amd64, linux-image-cloud-amd64, linux-image-amd64]
scenarios: [kill-server, power-off]
`)
	for id := range a {
		if !b[id] {
			t.Errorf("cell %s lost its id when unrelated lines changed", id)
		}
	}
	if len(b) != 2*3*4*4 {
		t.Errorf("%d cells in the second file", len(b))
	}
	// Another kernel as written is another cell, even if it resolves to the
	// same package.
	c := ids(strings.Replace(issueExample, "linux-image-amd64", "linux-image-6.1.0-57-amd64", 1))
	for id := range c {
		if strings.Contains(id, "e87ceb0e") {
			t.Errorf("kernel as written is not part of the id: %s", id)
		}
	}
}

// TestBadFiles: every bad file is refused before anything runs, naming
// file, line and field.
func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "mods", "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vmlinux"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, text string
		line       int
		field      string
		want       string
	}{
		{"syntax", "scenarios: [power-off\nrepetitions: 3\n", 2, "", "must be specified"},
		{"duplicate key", "scenarios: [power-off]\nscenarios: [kill-server]\n", 2, "", "already defined"},
		{"empty file", "# nothing\n", 1, "", "empty"},
		{"not a mapping", "- power-off\n", 1, "", "a campaign is a mapping"},
		{"no scenarios", "repetitions: 2\n", 1, "scenarios", "missing"},
		{"unknown field", "scenarios: [power-off]\nrepetition: 3\n", 2, "repetition", "unknown field"},
		{"unknown scenario", "scenarios:\n  - power-off\n  - power-of\n", 3, "scenarios[1]", `unknown scenario "power-of"`},
		{"scenario twice", "scenarios: [power-off, power-off]\n", 1, "scenarios[1]", "listed twice"},
		{"scenarios not a list", "scenarios: power-off\n", 1, "scenarios", "want a list"},
		{"empty scenarios", "scenarios: []\n", 1, "scenarios", "empty"},
		{"repetitions 0", "scenarios: [power-off]\nrepetitions: 0\n", 2, "repetitions", "at least 1"},
		{"repetitions text", "scenarios: [power-off]\nrepetitions: three\n", 2, "repetitions", "whole number"},
		{"budget without unit", "scenarios: [power-off]\nbudget: 20\n", 2, "budget", "unit"},
		{"negative budget", "scenarios: [power-off]\nbudget: -2s\n", 2, "budget", "positive"},
		{"unknown kernel", "scenarios: [power-off]\nkernels:\n  - linux-image-amd64\n  - linux-image-6.99-amd64\n", 4, "kernels[1]", "unknown kernel package"},
		{"same kernel twice", "scenarios: [power-off]\nkernels: [linux-image-amd64, linux-image-6.1.0-57-amd64]\n", 2, "kernels[1]", "same kernel"},
		{"pair without modules", "scenarios: [power-off]\nkernels:\n  - {kernel: vmlinux}\n", 3, "kernels[0]", "needs both"},
		{"pair, missing image", "scenarios: [power-off]\nkernels:\n  - kernel: nope\n    modules: mods\n", 3, "kernels[0].kernel", "not a kernel image"},
		{"pair, bad modules", "scenarios: [power-off]\nkernels:\n  - kernel: vmlinux\n    modules: .\n", 4, "kernels[0].modules", "no kernel/ folder"},
		{"unknown flag", "scenarios: [power-off]\nvariants:\n  - {idle: true}\n  - {keepalve: \"4s,2s,3\"}\n", 4, "variants[1].keepalve", "unknown flag: --keepalve"},
		{"flag with dashes", "scenarios: [power-off]\nvariants:\n  - {--idle: true}\n", 3, "variants[0].--idle", "without dashes"},
		{"run flag not a variant's", "scenarios: [power-off]\nvariants:\n  - {lab: mine}\n", 3, "variants[0].lab", "not a variant's flag"},
		{"bad keepalive", "scenarios: [power-off]\nvariants:\n  - {idle: true,\n     keepalive: \"4s,2s\"}\n", 4, "variants[0].keepalive", "--keepalive \"4s,2s\""},
		{"bad duration", "scenarios: [power-off]\nvariants:\n  - {user-timeout: six}\n", 3, "variants[0].user-timeout", "user-timeout"},
		{"negative duration", "scenarios: [power-off]\nvariants:\n  - {user-timeout: -6s}\n", 3, "variants[0].user-timeout", "must not be negative"},
		{"zero interval", "scenarios: [power-off]\nvariants:\n  - {interval: 0}\n", 3, "variants[0].interval", "must be positive"},
		{"bad bool", "scenarios: [power-off]\nvariants:\n  - {idle: maybe}\n", 3, "variants[0].idle", "invalid argument"},
		{"bad read", "scenarios: [power-off]\nvariants:\n  - {read: poll}\n", 3, "variants[0].read", "blocking or event"},
		{"bad sysctl", "scenarios: [power-off]\nvariants:\n  - {sysctl: [\"net.ipv4.tcp_retries2=5\"]}\n", 3, "variants[0].sysctl", "ROLE"},
		{"empty variant", "scenarios: [power-off]\nvariants:\n  -\n", 3, "variants[0]", "write {}"},
		{"variant twice", "scenarios: [power-off]\nvariants:\n  - {user-timeout: 6s}\n  - {user-timeout: 6000ms}\n", 4, "variants[1]", "same variant as variants[0]"},
		{"flag for another scenario", "scenarios: [power-off, crash-reboot]\nvariants:\n  - {reboot: power-cycle}\n", 3, "variants[0].reboot", "does not apply to power-off"},
		{"connect-dead flag for power-off", "scenarios: [power-off, connect-dead]\nvariants:\n  - {target: off}\n", 3, "variants[0].target", "does not apply to power-off"},
		{"bad target", "scenarios: [connect-dead]\nvariants:\n  - {target: bogus}\n", 3, "variants[0].target", "use off or no-listener"},
		{"idle hang-server", "scenarios: [hang-server]\nvariants:\n  - {idle: true}\n", 3, "variants[0].idle", "does not apply to hang-server"},
		{"classic hang-server", "scenarios: [hang-server]\nvariants:\n  - {client: classic}\n", 3, "variants[0].client", "does not apply to hang-server"},
		{"router sysctl without router", "scenarios: [power-off]\nvariants:\n  - {sysctl: [\"router:net.ipv4.ip_forward=1\"]}\n", 3, "variants[0].sysctl", "without a router"},
		{"nested value", "scenarios: [power-off]\nvariants:\n  - {keepalive: {idle: 4s}}\n", 3, "variants[0].keepalive", "want a value"},
	}
	if len(tests) < 10 {
		t.Fatal("the table needs at least 10 bad files")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, dir, tt.text)
			var fe FileErrors
			if !errors.As(err, &fe) || len(fe) == 0 {
				t.Fatalf("error %v; want FileErrors", err)
			}
			e := fe[0]
			if e.File != filepath.Join(dir, "c.yaml") || e.Line != tt.line || e.Field != tt.field || !strings.Contains(e.Msg, tt.want) {
				t.Errorf("got %q (line %d, field %q); want line %d, field %q, containing %q", e.Error(), e.Line, e.Field, tt.line, tt.field, tt.want)
			}
			if !strings.HasPrefix(e.Error(), fmt.Sprintf("%s:%d:", e.File, e.Line)) {
				t.Errorf("error %q does not start with FILE:LINE:", e.Error())
			}
		})
	}
}

// TestBadFileAllProblems: every problem of a file is reported, in order.
func TestBadFileAllProblems(t *testing.T) {
	_, err := load(t, t.TempDir(), "scenarios: [power-of]\nrepetitions: 0\nvariants:\n  - {nope: 1}\n")
	var fe FileErrors
	if !errors.As(err, &fe) || len(fe) != 3 {
		t.Fatalf("%v; want 3 problems", err)
	}
	var lines []int
	for _, e := range fe {
		lines = append(lines, e.Line)
	}
	if !slices.Equal(lines, []int{1, 2, 4}) {
		t.Errorf("lines %v", lines)
	}
}

// TestLoadConnectDeadAndHangServer: the scenarios of issue #12 and their
// own flags make cells.
func TestLoadConnectDeadAndHangServer(t *testing.T) {
	spec, err := load(t, t.TempDir(), `scenarios: [connect-dead]
variants:
  - {}
  - {target: no-listener}
  - {target: off, neigh: cold, sysctl: ["client:net.ipv4.tcp_syn_retries=2"]}
`)
	if err != nil {
		t.Fatal(err)
	}
	if o := spec.Variants[2].Options; o.Target != "off" || o.Neigh != "cold" {
		t.Errorf("variant 2 options %+v", o)
	}
	plan := Expand(spec, "", LabSettings{})
	if len(plan.Cells) != 3 || plan.NeedsRouter() {
		t.Fatalf("cells %+v", plan.Cells)
	}
	// The connect's bound (127 s with six SYN retries, 7 s with two; 30 s
	// without a listener) plus the 30 s the run watches beyond it.
	for i, want := range []time.Duration{157 * time.Second, 30 * time.Second, 37 * time.Second} {
		if !strings.HasPrefix(plan.Cells[i].ID, "connect-dead-") {
			t.Errorf("id %q", plan.Cells[i].ID)
		}
		if got := priorDetect(plan.Cells[i]); got != want {
			t.Errorf("prior of %s = %v; want %v", plan.Cells[i].VariantName, got, want)
		}
	}
	spec, err = load(t, t.TempDir(), "scenarios: [hang-server, kill-server]\nvariants:\n  - {user-timeout: 5s}\n  - {interval: 50ms}\n")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(Expand(spec, "", LabSettings{}).Cells); n != 4 {
		t.Errorf("%d cells; want 4", n)
	}
}

func TestDefaults(t *testing.T) {
	spec, err := load(t, t.TempDir(), "scenarios: [kill-server, unreachable]\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Kernels) != 1 || spec.Kernels[0].Written != "linux-image-amd64" || spec.Kernels[0].Release != "6.1.0-57-amd64" {
		t.Errorf("default kernel %+v", spec.Kernels)
	}
	if len(spec.Variants) != 1 || spec.Variants[0].Name != "defaults" || spec.Repetitions != 1 || spec.Budget != 0 {
		t.Errorf("defaults %+v", spec)
	}
	plan := Expand(spec, "", LabSettings{})
	if len(plan.Cells) != 2 || plan.Cells[0].Scenario != "kill-server" || !plan.Cells[1].Routed || !plan.NeedsRouter() {
		t.Errorf("cells %+v", plan.Cells)
	}
}

func TestPairKernel(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "lib/modules/6.13.0-test/kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bzImage"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := load(t, dir, "scenarios: [kill-server]\nkernels:\n  - {kernel: bzImage, modules: lib/modules/6.13.0-test}\n")
	if err != nil {
		t.Fatal(err)
	}
	k := spec.Kernels[0]
	if k.Image != filepath.Join(dir, "bzImage") || k.Release != "6.13.0-test" || k.Package != "" {
		t.Errorf("pair %+v", k)
	}
}

func TestCheckParallel(t *testing.T) {
	if err := CheckParallel(4, 128, true, 24000); err != nil {
		t.Error(err)
	}
	for _, tt := range []struct {
		n, avail int
		routed   bool
		want     string
	}{
		{0, 24000, false, "at least 1"},
		{9, 24000, false, "at most 8"},
		{4, 3000, false, "--parallel 3 or less"},
		{4, 3000, true, "--parallel 2 or less"},
	} {
		err := CheckParallel(tt.n, 128, tt.routed, tt.avail)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckParallel(%d, avail %d, routed %v) = %v; want %q", tt.n, tt.avail, tt.routed, err, tt.want)
		}
	}
}
