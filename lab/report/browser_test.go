package report

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/hostlab/hostlab/lab/labtest"
)

// browsers are the names a headless-capable Chromium goes by.
var browsers = []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"}

// findBrowser returns the path of a Chromium, or why there is none.
func findBrowser() (string, string) {
	for _, name := range browsers {
		if p, err := exec.LookPath(name); err == nil {
			return p, ""
		}
	}
	return "", "no Chromium (" + strings.Join(browsers, ", ") + ") in PATH; `hostlab setup` installs Debian's chromium"
}

// decideBrowser says what a browser test does without a browser: skip
// with the reason outside CI, fail in CI, which must run it.
func decideBrowser(ci bool, missing string) (skip, fail bool) {
	if missing == "" {
		return false, false
	}
	return !ci, ci
}

// requireBrowser returns Chromium's path, or skips t outside CI and fails
// it in CI when there is none.
func requireBrowser(t *testing.T) string {
	t.Helper()
	p, why := findBrowser()
	skip, fail := decideBrowser(labtest.InCI(), why)
	switch {
	case fail:
		t.Fatalf("browser test cannot run in CI: %s", why)
	case skip:
		t.Skipf("skipping browser test: %s", why)
	}
	return p
}

func TestDecideBrowser(t *testing.T) {
	for _, c := range []struct {
		ci         bool
		missing    string
		skip, fail bool
	}{
		{false, "", false, false},
		{true, "", false, false},
		{false, "no chromium", true, false},
		{true, "no chromium", false, true},
	} {
		skip, fail := decideBrowser(c.ci, c.missing)
		if skip != c.skip || fail != c.fail {
			t.Errorf("decideBrowser(%v, %q) = %v, %v; want %v, %v", c.ci, c.missing, skip, fail, c.skip, c.fail)
		}
	}
}

// plotCheck is what the page says about one plot container.
type plotCheck struct {
	Class    string  `json:"class"`
	ID       string  `json:"id"`
	SVGs     int     `json:"svgs"`
	Children int     `json:"children"`
	Width    float64 `json:"width"`
	Height   float64 `json:"height"`
}

// checkPlots opens every run's section and measures every plot.
const checkPlots = `(() => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  return Array.from(document.querySelectorAll('.plot')).map(p => {
    const svg = p.querySelector('svg');
    const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const sec = p.closest('[id]');
    return {class: p.className, id: sec ? sec.id : '', svgs: p.querySelectorAll(':scope > svg').length,
      children: svg ? svg.querySelectorAll('*').length : 0, width: r.width, height: r.height};
  });
})()`

// TestReportInBrowser opens the fixture campaign's page in headless
// Chromium: it must load without console errors and fetch nothing, and
// every plot must be an SVG with content and a size. With -update it
// retakes docs/report.png and docs/report-run.png.
func TestReportInBrowser(t *testing.T) {
	exe := requireBrowser(t)
	dir := fixtureCampaign(t)
	if _, _, err := Write(dir, Options{Now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 1400), chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	var mu sync.Mutex
	var problems, requests []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		}
	}
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithListener(listen))
	defer bcancel()
	url := "file://" + filepath.Join(dir, HTMLFile)
	if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitReady("body")); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	if *update {
		shot(t, bctx, filepath.Join("..", "..", "docs"))
	}
	plots, err := chromedp.Run(bctx, chromedp.Evaluate[[]plotCheck](checkPlots))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := Load(dir)
	if want := len(Figures(c)) + len(c.Runs); len(plots) != want {
		t.Errorf("%d plots on the page, want %d (a detection plot per cell, a timeline per run)", len(plots), want)
	}
	for _, p := range plots {
		if p.SVGs != 1 || p.Children < 10 || p.Width < 100 || p.Height < 40 {
			t.Errorf("plot %q in #%s: %d svg, %d elements, %.0f×%.0f px", p.Class, p.ID, p.SVGs, p.Children, p.Width, p.Height)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("page: %s", p)
	}
	for _, u := range requests {
		// The page itself, and the plot font it carries inline.
		if u != url && !strings.HasPrefix(u, "data:") {
			t.Errorf("page fetched %.120s: it must be self-contained", u)
		}
	}
}

// shot saves screenshots into dir: report.png, the top of the page (the
// answer and the summary table), and report-run.png, a run's section with
// its timeline.
func shot(t *testing.T, ctx context.Context, dir string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1200, 1180)); err != nil {
		t.Fatal(err)
	}
	top, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	const run = "#run-power-off-sysctl-client-net-ipv4-tcp-retries2-5-linux-image-amd64-rep-3"
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('`+run+`').open = true`)); err != nil {
		t.Fatal(err)
	}
	sec, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(run)))
	if err != nil {
		t.Fatal(err)
	}
	for name, png := range map[string][]byte{"report.png": top, "report-run.png": sec} {
		if len(png) > 300<<10 {
			t.Fatalf("%s is %d KiB, keep it under 300 KiB", name, len(png)>>10)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d KiB)", name, len(png)>>10)
	}
}
