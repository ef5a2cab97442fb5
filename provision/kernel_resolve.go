package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrUnknownKernelPackage reports a kernel package apt does not know and no
// cached kernel stands for.
var ErrUnknownKernelPackage = errors.New("unknown kernel package")

// ResolveKernelPackage names the kernel image package pkg stands for,
// without downloading anything: pkg itself when it is a kernel image
// package apt knows (linux-image-6.12.111+deb12-amd64) or one whose kernel
// is in cacheDir; for a meta package (linux-image-amd64,
// linux-image-6.12-amd64, linux-image-cloud-amd64, …) the linux-image
// package it depends on, followed until a kernel image package — as `up`
// resolves linux-image-amd64. Empty pkg means linux-image-amd64.
func ResolveKernelPackage(ctx context.Context, cacheDir, pkg string) (string, error) {
	if pkg == "" {
		pkg = "linux-image-amd64"
	}
	asked := pkg
	for range 4 {
		if !validPackageName(pkg) || !strings.HasPrefix(pkg, "linux-image-") {
			return "", fmt.Errorf("kernel package %q: want a Debian kernel package, linux-image-…", pkg)
		}
		out, err := exec.CommandContext(ctx, "apt-cache", "depends", pkg).CombinedOutput()
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			if cachedRelease(cacheDir, pkg) {
				return pkg, nil // apt forgot it, the cache has it
			}
			if bytes.Contains(out, []byte("No packages found")) || bytes.Contains(out, []byte("Unable to locate")) {
				return "", fmt.Errorf("kernel package %q: %w: apt does not know it (list them with apt-cache search --names-only '^linux-image-'; or run apt-get update)", pkg, ErrUnknownKernelPackage)
			}
			return "", fmt.Errorf("kernel package %q: apt-cache depends: %w: %s", pkg, err, firstLine(out))
		}
		dep := ""
		for _, line := range strings.Split(string(out), "\n") {
			if d, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: "); ok && strings.HasPrefix(d, "linux-image-") {
				dep = d
				break
			}
		}
		if dep == "" {
			if _, err := releaseFromPackage(pkg); err != nil {
				return "", err
			}
			return pkg, nil
		}
		pkg = dep
	}
	return "", fmt.Errorf("kernel package %q: meta packages depend on each other too deeply (at %s)", asked, pkg)
}

// PackageRelease is the kernel release a kernel image package holds, from
// its name ("linux-image-6.1.0-57-amd64" holds 6.1.0-57-amd64).
func PackageRelease(pkg string) (string, error) { return releaseFromPackage(pkg) }

// cachedRelease reports whether cacheDir holds a valid kernel of pkg's
// release.
func cachedRelease(cacheDir, pkg string) bool {
	rel, err := releaseFromPackage(pkg)
	if err != nil || cacheDir == "" {
		return false
	}
	_, err = loadKernel(filepath.Join(cacheDir, "kernels", rel))
	return err == nil
}
