// Package labtest brings labs up for tests that need real VMs: it builds the
// static hostlab binary used as guest init, decides whether such a test may
// skip, and tears every lab down in t.Cleanup.
package labtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/vms"
)

// InCI reports whether the tests run in CI, where VM tests must not skip.
func InCI() bool { return os.Getenv("CI") != "" }

// decide says what a VM test does when a prerequisite is missing: outside CI
// it skips with the reason, in CI it fails, since CI must run it.
func decide(ci bool, missing string) (skip, fail bool) {
	if missing == "" {
		return false, false
	}
	return !ci, ci
}

// missing names the first absent prerequisite of a VM test, or "".
func missing(ctx context.Context) string {
	if os.Geteuid() != 0 {
		return "VM tests need root (qemu:///system)"
	}
	hv, err := vms.Connect(ctx, vms.ResolveURI(""))
	if err != nil {
		return fmt.Sprintf("libvirtd is not reachable (%v); run `hostlab setup`", err)
	}
	hv.Close()
	if _, err := exec.LookPath("go"); err != nil {
		return "the go command is needed to build the guest init"
	}
	return ""
}

// Require skips t when a VM test cannot run here, or fails it in CI.
func Require(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	why := missing(ctx)
	skip, fail := decide(InCI(), why)
	switch {
	case fail:
		t.Fatalf("VM test cannot run in CI: %s", why)
	case skip:
		t.Skipf("skipping VM test: %s", why)
	}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// GuestBinary builds the static hostlab binary (CGO_ENABLED=0) once per test
// binary and returns its path.
func GuestBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "hostlab-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "hostlab")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/hostlab")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build guest binary: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("tests must run inside the hostlab module")
	}
	return filepath.Dir(mod), nil
}

// Logger returns a logger that writes to t.Log.
func Logger(t testing.TB) *slog.Logger { return logger(t) }

// Config returns a lab configuration for a test lab named name, prefixed
// with $HOSTLAB_TEST_LAB_PREFIX so that several test runs on one host (e.g.
// from separate work trees) do not take down each other's labs.
func Config(t testing.TB, name string) lab.Config {
	return lab.Config{Name: os.Getenv("HOSTLAB_TEST_LAB_PREFIX") + name, GuestBinary: GuestBinary(t), Log: logger(t)}
}

// Up brings a lab up for t (removing a leftover of the same name first) and
// takes it down in t.Cleanup.
func Up(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := lab.Down(ctx, cfg); err != nil {
		t.Fatalf("remove leftover lab %s: %v", cfg.Name, err)
	}
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Cleanup(func() {
		l.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := lab.Down(ctx, cfg); err != nil {
			t.Errorf("down lab %s: %v", cfg.Name, err)
		}
	})
	t.Logf("lab %s up: accel %s, kernel %s, boot→ssh %v", l.Name(), l.State.Accel, l.State.KernelRelease, l.BootTimes)
	return l
}
