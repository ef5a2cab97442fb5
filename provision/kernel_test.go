package provision

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReleaseFromPackage(t *testing.T) {
	tests := []struct{ pkg, release string }{
		{"linux-image-6.1.0-56-amd64", "6.1.0-56-amd64"},
		{"linux-image-6.1.0-56-amd64-unsigned", "6.1.0-56-amd64"},
		{"linux-image-amd64", ""},
		{"-oops", ""},
		{"linux-image-6.1 ; rm", ""},
		{"nginx", ""},
	}
	for _, tt := range tests {
		got, err := releaseFromPackage(tt.pkg)
		if got != tt.release || (err == nil) != (tt.release != "") {
			t.Errorf("releaseFromPackage(%q) = %q, %v; want %q", tt.pkg, got, err, tt.release)
		}
	}
}

func TestKeepModuleFile(t *testing.T) {
	tests := map[string]bool{
		"modules.builtin":                         true,
		"modules.order":                           true,
		"modules.dep":                             false,
		"kernel/drivers/net/virtio_net.ko":        true,
		"kernel/drivers/net/ethernet/intel/e1.ko": false,
		"kernel/drivers/gpu/drm/drm.ko":           false,
		"kernel/net/packet/af_packet_diag.ko":     true,
	}
	for rel, want := range tests {
		if got := keepModuleFile(rel); got != want {
			t.Errorf("keepModuleFile(%q) = %v, want %v", rel, got, want)
		}
	}
}

// TestInstallDebRealPackage checks what FetchKernel does after the download,
// on a real package: vmlinux extraction, the pruned modules tree, permissions.
func TestInstallDebRealPackage(t *testing.T) {
	dir, meta := realKernel(t)
	t.Logf("installDeb took %s; release %s, package %s %s", kernelTime, meta.Release, meta.Package, meta.Version)
	if meta.ImageFile != "vmlinux" {
		t.Fatalf("image file %q, want vmlinux", meta.ImageFile)
	}
	if err := checkVmlinux(filepath.Join(dir, "vmlinux")); err != nil {
		t.Error(err)
	}
	f, err := elf.Open(filepath.Join(dir, "vmlinux"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !strings.HasPrefix(meta.Package, "linux-image-"+meta.Release) {
		t.Errorf("package %q does not match release %q", meta.Package, meta.Release)
	}
	var size int64
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		size += fi.Size()
		if want := fs.FileMode(0o644); d.IsDir() {
			want = 0o755 | fs.ModeDir
			if fi.Mode() != want {
				t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
			}
		} else if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cache entry: %d MB", size>>20)
	k, err := loadKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != meta.Release || k.ModulesDir != filepath.Join(dir, "modules") {
		t.Errorf("loadKernel = %+v", k)
	}
}

// TestKeptModulesSelfContained checks that pruning the modules tree kept
// every dependency of every kept module.
func TestKeptModulesSelfContained(t *testing.T) {
	if testing.Short() {
		t.Skip("reads every cached module")
	}
	dir, meta := realKernel(t)
	modules := filepath.Join(dir, "modules")
	index, err := indexModules(modules)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for name := range index {
		all = append(all, name)
	}
	mods, err := resolveModules(context.Background(), modules, meta.Release, all, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d modules kept, all dependencies present", len(mods))
}

func TestLookupKernelCorrupt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kernels", "1.2.3")
	os.MkdirAll(filepath.Join(dir, "modules"), 0o755)
	os.WriteFile(filepath.Join(dir, "vmlinux"), []byte("short"), 0o644)
	writeJSON(filepath.Join(dir, "kernel.json"), kernelMeta{
		Format: kernelFormatVersion, Release: "1.2.3", ImageFile: "vmlinux", ImageSize: 1000,
		ImageSHA256: strings.Repeat("0", 64), ModulesDir: "modules", Source: "debian",
	})
	var msgs []string
	if _, ok := lookupKernel(dir, func(s string) { msgs = append(msgs, s) }); ok {
		t.Fatal("truncated vmlinux accepted")
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("corrupt entry not removed: %v", err)
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0], "invalid") {
		t.Errorf("progress = %q", msgs)
	}
}

func TestCustomKernelValidation(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	tests := []struct {
		spec KernelSpec
		text string
	}{
		{KernelSpec{ModulesDir: "/x"}, "--kernel"},
		{KernelSpec{Image: "/x"}, "--modules"},
		{KernelSpec{Image: "/nonexistent", ModulesDir: t.TempDir()}, "--kernel"},
		{KernelSpec{Image: "/bin/ls", ModulesDir: t.TempDir()}, "--modules"},
	}
	for _, tt := range tests {
		if _, err := FetchKernel(ctx, cache, tt.spec, nil); err == nil || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("FetchKernel(%+v) error %v, want one mentioning %s", tt.spec, err, tt.text)
		}
	}
	mods := fakeTree(t)
	if _, err := FetchKernel(ctx, cache, KernelSpec{Image: "/bin/ls", ModulesDir: mods}, nil); err == nil ||
		!strings.Contains(err.Error(), "cannot boot directly") {
		t.Errorf("FetchKernel with /bin/ls as kernel: %v", err)
	}
}

func TestCustomKernelReal(t *testing.T) {
	dir, meta := realKernel(t)
	mods := filepath.Join(t.TempDir(), "lib", "modules", meta.Release)
	os.MkdirAll(filepath.Dir(mods), 0o755)
	if err := os.Symlink(filepath.Join(dir, "modules"), mods); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	spec := KernelSpec{Image: filepath.Join(dir, "vmlinux"), ModulesDir: mods}
	k, err := FetchKernel(context.Background(), cache, spec, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != meta.Release || k.ImageSHA256 != meta.ImageSHA256 || k.ModulesDir != mods {
		t.Errorf("custom kernel = %+v", k)
	}
	k2, err := FetchKernel(context.Background(), cache, spec, nil)
	if err != nil || k2 != k {
		t.Errorf("second FetchKernel = %+v, %v; want cache hit %+v", k2, err, k)
	}
	other := filepath.Join(t.TempDir(), "lib", "modules", "9.9.9")
	os.MkdirAll(filepath.Dir(other), 0o755)
	os.Symlink(filepath.Join(dir, "modules"), other)
	if _, err := FetchKernel(context.Background(), cache, KernelSpec{Image: spec.Image, ModulesDir: other}, nil); err == nil ||
		!strings.Contains(err.Error(), "is release "+meta.Release) {
		t.Errorf("mismatched modules dir: %v", err)
	}
}

// TestFetchKernelReal downloads the kernel with apt-get. It runs when
// HOSTLAB_TEST_KERNEL=1 (into a temporary cache, or HOSTLAB_CACHE when set)
// or when HOSTLAB_CACHE already holds a kernel.
func TestFetchKernelReal(t *testing.T) {
	cache := os.Getenv("HOSTLAB_CACHE")
	cached, _ := filepath.Glob(filepath.Join(cache, "kernels", "*", "kernel.json"))
	switch {
	case os.Getenv("HOSTLAB_TEST_KERNEL") == "1":
		if cache == "" {
			cache = t.TempDir()
		}
	case cache != "" && len(cached) > 0:
	default:
		t.Skip("downloads ~70 MB: set HOSTLAB_TEST_KERNEL=1, or HOSTLAB_CACHE to a cache holding a kernel")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	k, err := FetchKernel(ctx, cache, KernelSpec{}, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FetchKernel took %s: %+v", time.Since(start), k)
	start = time.Now()
	k2, err := FetchKernel(ctx, cache, KernelSpec{Package: k.Package}, func(s string) { t.Log(s) })
	if err != nil || k2 != k {
		t.Fatalf("cached FetchKernel = %+v, %v", k2, err)
	}
	t.Logf("cached FetchKernel took %s", time.Since(start))
}

// fakeCommand puts an executable shell script named name first in PATH.
func fakeCommand(t *testing.T, name, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
}

func TestDefaultKernelPackage(t *testing.T) {
	fakeCommand(t, "apt-cache", "echo linux-image-amd64\necho '  Depends: linux-image-6.1.0-99-amd64'\n")
	if pkg, err := defaultKernelPackage(context.Background()); err != nil || pkg != "linux-image-6.1.0-99-amd64" {
		t.Errorf("defaultKernelPackage = %q, %v", pkg, err)
	}
	fakeCommand(t, "apt-cache", "echo 'E: No packages found' >&2; exit 100\n")
	_, err := defaultKernelPackage(context.Background())
	if !errors.Is(err, ErrNoAptLists) || !strings.Contains(err.Error(), "apt-get update") {
		t.Errorf("defaultKernelPackage with empty lists: %v, want ErrNoAptLists", err)
	}
}

func TestBzImageRelease(t *testing.T) {
	b := make([]byte, 0x400)
	copy(b[0x202:], "HdrS")
	b[0x20e], b[0x20f] = 0x00, 0x01 // version string at 0x100+0x200
	copy(b[0x300:], "6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP\x00")
	if got := bzImageRelease(b); got != "6.1.0-56-amd64" {
		t.Errorf("bzImageRelease = %q", got)
	}
	if got := bzImageRelease(b[:0x100]); got != "" {
		t.Errorf("bzImageRelease(short) = %q", got)
	}
	banner := []byte("junk %s Linux version %s (%s)\x00Linux version 6.1.0-9-amd64 (builder@host) (gcc)")
	if got := vmlinuxRelease(banner); got != "6.1.0-9-amd64" {
		t.Errorf("vmlinuxRelease = %q", got)
	}
}

func TestMemoDefaultPackage(t *testing.T) {
	lists := t.TempDir()
	old := aptLists
	aptLists = lists
	t.Cleanup(func() { aptLists = old })
	dir := t.TempDir()
	memo := defaultMemo{Package: "linux-image-6.1.0-7-amd64"}
	if fi, err := os.Stat(lists); err == nil {
		memo.ListsStamp = fi.ModTime().UnixNano()
	}
	b, _ := json.Marshal(memo)
	if err := os.WriteFile(filepath.Join(dir, "default-package.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	// The lists have not changed since the memo: apt is not asked.
	pkg, err := memoDefaultPackage(context.Background(), dir, func(string) {})
	if err != nil || pkg != memo.Package {
		t.Fatalf("memoDefaultPackage = %q, %v; want the remembered %s", pkg, err, memo.Package)
	}
}
