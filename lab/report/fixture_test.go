package report

import (
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files (and docs/report.png)")

// fixtureCell is one cell of the fixture campaign: its variant and the
// recorded runs (testdata/runs/SET/NAME) that are its repetitions.
type fixtureCell struct {
	scenario string
	variant  map[string]any
	name     string
	runs     []string
}

// fixtureCells are the fixture campaign's cells, in campaign order.
var fixtureCells = []fixtureCell{
	{"kill-server", map[string]any{}, "", []string{"fx/ks", "a/kill-server", "b/kill-server"}},
	{"kill-server", map[string]any{"read": "event"}, "--read event", []string{"fx/ks-ev", "a/kill-server-read-event", "b/kill-server-read-event"}},
	{"sigpipe", map[string]any{}, "", []string{"fx/sp", "a/sigpipe", "b/sigpipe"}},
	{"sigpipe", map[string]any{"sigpipe-ignore": true}, "--sigpipe-ignore", []string{"a/sigpipe-sigpipe-ignore", "b/sigpipe-sigpipe-ignore"}},
	{"power-off", map[string]any{"sysctl": []string{"client:net.ipv4.tcp_retries2=5"}}, "--sysctl client:net.ipv4.tcp_retries2=5",
		[]string{"fx/po-r5", "a/power-off", "b/power-off", "cut/power-off"}},
	{"power-off", map[string]any{"idle": true, "keepalive": "3s,1s,3"}, "--idle --keepalive 3s,1s,3", []string{"fx/po-ka", "a/power-off-idle-keepalive-3s-1s-3", "b/power-off-idle-keepalive-3s-1s-3"}},
	{"power-off", map[string]any{"user-timeout": "6s"}, "--user-timeout 6s", []string{"fx/po-ut6", "a/power-off-user-timeout-6s", "b/power-off-user-timeout-6s"}},
	{"power-off", map[string]any{"max-wait": "3s"}, "--max-wait 3s", []string{"fx/stopped-max-wait"}},
	{"unreachable", map[string]any{}, "", []string{"fx/unr", "a/unreachable", "b/unreachable"}},
	{"crash-reboot", map[string]any{}, "", []string{"fx/crash", "a/crash-reboot", "b/crash-reboot"}},
	{"shutdown", map[string]any{}, "", []string{"fx/sd-close", "a/shutdown", "b/shutdown"}},
	{"shutdown", map[string]any{"server-sigterm": "ignore"}, "--server-sigterm ignore", []string{"fx/sd-ign", "a/shutdown-server-sigterm-ignore", "b/shutdown-server-sigterm-ignore"}},
}

// fixtureBudget is the fixture campaign's detection budget, seconds.
const fixtureBudget = 20.0

// fixtureOrigin is where the fixture campaign was "recorded": run_dir
// names folders there, and the report must find them where they are now.
const fixtureOrigin = "/var/lib/hostlab/campaigns/nightly"

// writeCampaign assembles a campaign folder from the recorded runs in dir
// and returns its results.jsonl lines; edit may change each row before it
// is written (return false to leave the row out, keeping its folder).
func writeCampaign(t testing.TB, dir string, edit func(row map[string]any) bool) {
	t.Helper()
	var lines []string
	for _, c := range fixtureCells {
		cellID := c.scenario
		if c.name != "" {
			cellID += "-" + slug(strings.ReplaceAll(strings.TrimLeft(c.name, "-"), " --", "-"))
		}
		for i, src := range c.runs {
			rep := i + 1
			matches, _ := filepath.Glob(filepath.Join("testdata", "runs", src, "*"))
			if len(matches) != 1 {
				t.Fatalf("fixture %s: want one run folder, found %v", src, matches)
			}
			rel := filepath.Join("runs", cellID, "linux-image-amd64", "rep-"+itoa(rep), filepath.Base(matches[0]))
			copyTree(t, matches[0], filepath.Join(dir, rel))
			row := map[string]any{}
			if b, err := os.ReadFile(filepath.Join(matches[0], "result.json")); err == nil {
				if err := json.Unmarshal(b, &row); err != nil {
					t.Fatal(err)
				}
			} else {
				// What a runner records for a run that never wrote its result.
				row["scenario"] = c.scenario
				row["complete"] = false
				row["incomplete"] = "hostlab run: signal: killed (the host lost power)"
				row["verdict"] = ""
			}
			id := cellID + "/linux-image-amd64/rep-" + itoa(rep)
			release := "6.1.0-57-amd64"
			row["id"], row["kernel"], row["kernel_release"] = id, "linux-image-amd64", release
			row["variant"], row["variant_name"], row["rep"] = c.variant, c.name, rep
			row["budget_s"] = fixtureBudget
			row["meets_budget"] = nil
			if obs, ok := row["observed"].(map[string]any); ok {
				if d, ok := obs["detect_s"].(float64); ok {
					row["meets_budget"] = d <= fixtureBudget
				}
			}
			row["run_dir"] = filepath.Join(fixtureOrigin, rel)
			if edit != nil && !edit(row) {
				continue
			}
			b, err := json.Marshal(row)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, string(b))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ResultsFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixtureCampaign assembles the fixture campaign in a temporary folder.
func fixtureCampaign(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nightly")
	writeCampaign(t, dir, nil)
	return dir
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// copyTree copies the files of src into dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
