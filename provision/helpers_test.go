package provision

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testDir holds fixtures shared by the tests of one run (a built static
// binary, an extracted real kernel).
var testDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "provision-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	staticOnce sync.Once
	staticPath string
	staticErr  error
)

// staticBinary builds (once) a tiny Go program with CGO_ENABLED=0.
func staticBinary(t *testing.T) string {
	t.Helper()
	staticOnce.Do(func() {
		src := filepath.Join(testDir, "static")
		if staticErr = os.MkdirAll(src, 0o755); staticErr != nil {
			return
		}
		os.WriteFile(filepath.Join(src, "go.mod"), []byte("module static\n\ngo 1.22\n"), 0o644)
		os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() { println(\"hi\") }\n"), 0o644)
		staticPath = filepath.Join(testDir, "static-bin")
		cmd := exec.Command("go", "build", "-o", staticPath, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			staticErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if staticErr != nil {
		t.Skipf("cannot build a static test binary: %v", staticErr)
	}
	return staticPath
}

// realDeb returns a downloaded Debian kernel package: $HOSTLAB_TEST_DEB, or
// the one in /tmp/kpkg; the test is skipped when there is none.
func realDeb(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOSTLAB_TEST_DEB"); p != "" {
		return p
	}
	debs, _ := filepath.Glob("/tmp/kpkg/linux-image-*.deb")
	if len(debs) == 0 {
		t.Skip("no kernel package: set HOSTLAB_TEST_DEB or put linux-image-*.deb in /tmp/kpkg")
	}
	return debs[len(debs)-1]
}

var (
	kernelOnce sync.Once
	kernelDir  string
	kernelMet  kernelMeta
	kernelErr  error
	kernelTime time.Duration
)

// realKernel installs (once) the real package into a cache entry under
// testDir, as FetchKernel does after downloading.
func realKernel(t *testing.T) (string, kernelMeta) {
	t.Helper()
	deb := realDeb(t)
	kernelOnce.Do(func() {
		kernelDir = filepath.Join(testDir, "kernel")
		start := time.Now()
		kernelMet, kernelErr = installDeb(context.Background(), deb, kernelDir, func(string) {})
		kernelTime = time.Since(start)
	})
	if kernelErr != nil {
		t.Fatalf("installDeb(%s): %v", deb, kernelErr)
	}
	return kernelDir, kernelMet
}
