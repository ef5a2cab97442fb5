package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KernelSpec selects the guest kernel: a Debian package, or a kernel image
// and modules tree supplied by the user.
type KernelSpec struct {
	// Package is a Debian package such as "linux-image-6.1.0-56-amd64"; empty
	// (with Image empty) means the package linux-image-amd64 depends on.
	Package string
	// Image is a user-supplied vmlinux or bzImage (flag --kernel).
	Image string
	// ModulesDir is the user-supplied modules tree lib/modules/<release>
	// matching Image (flag --modules).
	ModulesDir string
}

// Kernel is a cached kernel ready to boot.
type Kernel struct {
	// Release is the kernel release, e.g. "6.1.0-56-amd64".
	Release string `json:"release"`
	// Image is the path of the bootable image: a PVH vmlinux, or a bzImage
	// when no vmlinux could be extracted.
	Image string `json:"image"`
	// ImageSHA256 is the hex sha256 of Image.
	ImageSHA256 string `json:"image_sha256"`
	// ModulesDir is the modules tree (the layout of lib/modules/<release>).
	ModulesDir string `json:"modules_dir"`
	// Package is the Debian package the kernel came from; empty for a
	// user-supplied kernel.
	Package string `json:"package,omitempty"`
	// Version is the Debian package version, e.g. "6.1.192-2".
	Version string `json:"version,omitempty"`
}

// kernelFormatVersion changes whenever the layout of a kernel cache entry
// changes; entries of another version are fetched again.
const kernelFormatVersion = 1

// kernelMeta is the content of kernel.json in a cache entry. Paths are
// relative to the entry, except a user-supplied modules tree.
type kernelMeta struct {
	Format      int    `json:"format"`
	Release     string `json:"release"`
	ImageFile   string `json:"image_file"`
	ImageSize   int64  `json:"image_size"`
	ImageSHA256 string `json:"image_sha256"`
	ModulesDir  string `json:"modules_dir"`
	Package     string `json:"package,omitempty"`
	Version     string `json:"version,omitempty"`
	Source      string `json:"source"` // "debian" or "custom"
}

// FetchKernel returns the kernel selected by spec from cacheDir/kernels,
// downloading and extracting it first when it is not cached. A corrupt
// cache entry is removed and fetched again. progress, if not nil, receives
// one-line status messages.
func FetchKernel(ctx context.Context, cacheDir string, spec KernelSpec, progress func(string)) (Kernel, error) {
	if progress == nil {
		progress = func(string) {}
	}
	if cacheDir == "" {
		return Kernel{}, errors.New("fetch kernel: cache dir not set")
	}
	if spec.Image != "" || spec.ModulesDir != "" {
		return customKernel(ctx, cacheDir, spec, progress)
	}
	pkg := spec.Package
	if pkg == "" {
		var err error
		if pkg, err = memoDefaultPackage(ctx, filepath.Join(cacheDir, "kernels"), progress); err != nil {
			return Kernel{}, err
		}
	}
	release, err := releaseFromPackage(pkg)
	if err != nil {
		return Kernel{}, err
	}
	kernels := filepath.Join(cacheDir, "kernels")
	dir := filepath.Join(kernels, release)
	if k, ok := lookupKernel(dir, progress); ok {
		return k, nil
	}
	stage, err := stageDir(kernels, release)
	if err != nil {
		return Kernel{}, err
	}
	defer os.RemoveAll(stage)
	deb, err := downloadPackage(ctx, stage, pkg, progress)
	if err != nil {
		return Kernel{}, err
	}
	entry := filepath.Join(stage, "entry")
	meta, err := installDeb(ctx, deb, entry, progress)
	if err != nil {
		return Kernel{}, fmt.Errorf("install kernel %s: %w", pkg, err)
	}
	if meta.Release != release {
		return Kernel{}, fmt.Errorf("install kernel %s: package holds release %s, want %s", pkg, meta.Release, release)
	}
	if err := publishDir(entry, dir); err != nil {
		return Kernel{}, err
	}
	return loadKernel(dir)
}

// lookupKernel returns the cache entry in dir when it is valid. An invalid
// entry is removed (reported through progress) so that it is fetched again.
func lookupKernel(dir string, progress func(string)) (Kernel, bool) {
	k, err := loadKernel(dir)
	if err == nil {
		return k, true
	}
	if _, statErr := os.Lstat(dir); statErr == nil {
		progress(fmt.Sprintf("kernel cache entry %s is invalid (%v); fetching it again", dir, err))
		_ = os.RemoveAll(dir)
	}
	return Kernel{}, false
}

// loadKernel reads and checks the cache entry in dir.
func loadKernel(dir string) (Kernel, error) {
	var m kernelMeta
	if err := readJSON(filepath.Join(dir, "kernel.json"), &m); err != nil {
		return Kernel{}, err
	}
	if m.Format != kernelFormatVersion || m.Release == "" || m.ImageFile == "" ||
		m.ImageSHA256 == "" || strings.Contains(m.ImageFile, "/") {
		return Kernel{}, fmt.Errorf("%s: unsupported or incomplete kernel.json", dir)
	}
	k := Kernel{
		Release:     m.Release,
		Image:       filepath.Join(dir, m.ImageFile),
		ImageSHA256: m.ImageSHA256,
		ModulesDir:  m.ModulesDir,
		Package:     m.Package,
		Version:     m.Version,
	}
	if !filepath.IsAbs(k.ModulesDir) {
		k.ModulesDir = filepath.Join(dir, m.ModulesDir)
	}
	if err := checkFileSize(k.Image, m.ImageSize); err != nil {
		return Kernel{}, err
	}
	if fi, err := os.Stat(k.ModulesDir); err != nil || !fi.IsDir() {
		return Kernel{}, fmt.Errorf("modules dir %s missing", k.ModulesDir)
	}
	return k, nil
}

// releaseFromPackage derives the kernel release from a Debian kernel
// package name ("linux-image-6.1.0-56-amd64[-unsigned]").
func releaseFromPackage(pkg string) (string, error) {
	if !validPackageName(pkg) {
		return "", fmt.Errorf("kernel package %q: not a Debian package name (fix --kernel-package)", pkg)
	}
	rel, ok := strings.CutPrefix(pkg, "linux-image-")
	rel = strings.TrimSuffix(rel, "-unsigned")
	if !ok || rel == "" || rel[0] < '0' || rel[0] > '9' {
		return "", fmt.Errorf("kernel package %q: want linux-image-<release>, e.g. linux-image-6.1.0-56-amd64 (fix --kernel-package)", pkg)
	}
	return rel, nil
}

// validPackageName reports whether s is a Debian package name (and so cannot
// be mistaken for a command-line option).
func validPackageName(s string) bool {
	if len(s) < 2 || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isLowerAlnum reports whether c is a lower-case letter or digit.
func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
