package provision

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// keptModuleDirs are the parts of a Debian modules tree kept in the cache
// (about 95 MB of the 390 MB tree): networking, virtio, input, ACPI, file
// systems and the libraries they use. droppedModuleDirs are hardware drivers
// removed from within them. Kept modules that depend on dropped ones are
// removed too (pruneUnresolvable).
var (
	keptModuleDirs = []string{
		"kernel/arch/", "kernel/block/", "kernel/crypto/", "kernel/fs/", "kernel/lib/", "kernel/mm/",
		"kernel/net/", "kernel/virt/", "kernel/drivers/acpi/", "kernel/drivers/block/",
		"kernel/drivers/char/", "kernel/drivers/input/", "kernel/drivers/net/", "kernel/drivers/virtio/",
	}
	droppedModuleDirs = []string{
		"kernel/drivers/net/can/", "kernel/drivers/net/ethernet/", "kernel/drivers/net/usb/",
		"kernel/drivers/net/wireless/",
	}
)

// keepModuleFile reports whether rel (relative to lib/modules/<release>) is
// copied into the cache.
func keepModuleFile(rel string) bool {
	if !strings.Contains(rel, "/") {
		return strings.HasPrefix(rel, "modules.builtin") || rel == "modules.order"
	}
	kept := false
	for _, d := range keptModuleDirs {
		kept = kept || strings.HasPrefix(rel, d)
	}
	for _, d := range droppedModuleDirs {
		kept = kept && !strings.HasPrefix(rel, d)
	}
	return kept
}

// defaultKernelPackage asks apt which package linux-image-amd64 depends on.
func defaultKernelPackage(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", "linux-image-amd64").CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("Unable to locate package")) || bytes.Contains(out, []byte("No packages found")) {
			return "", fmt.Errorf("resolve linux-image-amd64: %w", ErrNoAptLists)
		}
		return "", fmt.Errorf("resolve linux-image-amd64: apt-cache depends: %w: %s", err, firstLine(out))
	}
	for _, line := range strings.Split(string(out), "\n") {
		dep, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: ")
		if ok && strings.HasPrefix(dep, "linux-image-") {
			return dep, nil
		}
	}
	return "", fmt.Errorf("resolve linux-image-amd64: no linux-image dependency in apt-cache output (%w?)", ErrNoAptLists)
}

// aptLists is where apt keeps its package lists; its mtime changes with
// every apt-get update.
var aptLists = "/var/lib/apt/lists"

// defaultMemo remembers which package linux-image-amd64 meant for one
// state of apt's lists (asking apt-cache costs about a second).
type defaultMemo struct {
	Package    string `json:"package"`
	ListsStamp int64  `json:"lists_stamp"`
}

// memoDefaultPackage is defaultKernelPackage, remembered in dir until apt's
// lists change. When apt cannot answer (no lists) a remembered answer is
// used, with a notice.
func memoDefaultPackage(ctx context.Context, dir string, progress func(string)) (string, error) {
	path := filepath.Join(dir, "default-package.json")
	var stamp int64
	if fi, err := os.Stat(aptLists); err == nil {
		stamp = fi.ModTime().UnixNano()
	}
	var memo defaultMemo
	haveMemo := readJSON(path, &memo) == nil && validPackageName(memo.Package)
	if haveMemo && memo.ListsStamp == stamp && stamp != 0 {
		return memo.Package, nil
	}
	pkg, err := defaultKernelPackage(ctx)
	if err != nil {
		if haveMemo && errors.Is(err, ErrNoAptLists) {
			progress(fmt.Sprintf("apt cannot resolve linux-image-amd64; using %s as last resolved", memo.Package))
			return memo.Package, nil
		}
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		if b, err := json.Marshal(defaultMemo{Package: pkg, ListsStamp: stamp}); err == nil {
			_ = os.WriteFile(path, b, 0o644) // A lost memo costs one more apt-cache call.
		}
	}
	return pkg, nil
}

// downloadPackage runs apt-get download in dir and returns the .deb path.
func downloadPackage(ctx context.Context, dir, pkg string, progress func(string)) (string, error) {
	progress("downloading " + pkg)
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", "--", pkg)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("download %s: %w", pkg, ctx.Err())
		}
		if bytes.Contains(out, []byte("Unable to locate package")) {
			return "", fmt.Errorf("download %s: apt does not know this package (check the name, or run apt-get update)", pkg)
		}
		return "", fmt.Errorf("download %s: apt-get download: %w: %s", pkg, err, lastLine(out))
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("download %s: apt-get download left %d .deb files in %s", pkg, len(debs), dir)
	}
	return debs[0], nil
}

// installDeb extracts a Debian kernel package into the new cache entry dst:
// vmlinux (or vmlinuz when no PVH vmlinux can be extracted), the kept part of
// the modules tree under modules/, and kernel.json.
func installDeb(ctx context.Context, deb, dst string, progress func(string)) (kernelMeta, error) {
	if err := checkDebMagic(deb); err != nil {
		return kernelMeta{}, err
	}
	fields, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Package", "Version").Output()
	if err != nil {
		return kernelMeta{}, fmt.Errorf("read control of %s: %w", deb, err)
	}
	meta := kernelMeta{Format: kernelFormatVersion, Source: "debian", ModulesDir: "modules"}
	for _, line := range strings.Split(string(fields), "\n") {
		if v, ok := strings.CutPrefix(line, "Package: "); ok {
			meta.Package = strings.TrimSpace(v)
		} else if v, ok := strings.CutPrefix(line, "Version: "); ok {
			meta.Version = strings.TrimSpace(v)
		}
	}
	if err := mkdirPublic(dst); err != nil {
		return kernelMeta{}, err
	}
	progress("extracting " + filepath.Base(deb))
	vmlinuz, err := extractDebFiles(ctx, deb, dst, &meta)
	if err != nil {
		return kernelMeta{}, err
	}
	if _, err := pruneUnresolvable(ctx, filepath.Join(dst, meta.ModulesDir)); err != nil {
		return kernelMeta{}, err
	}
	progress("extracting vmlinux")
	meta.ImageFile = "vmlinux"
	err = extractVmlinux(ctx, vmlinuz, filepath.Join(dst, meta.ImageFile))
	if errors.Is(err, errNoVmlinux) {
		progress(fmt.Sprintf("kernel %s: %v; booting the compressed vmlinuz (slower)", meta.Release, err))
		meta.ImageFile = "vmlinuz"
		err = writeFilePublic(filepath.Join(dst, meta.ImageFile), vmlinuz, filePerm)
	}
	if err != nil {
		return kernelMeta{}, fmt.Errorf("extract vmlinux from %s: %w", deb, err)
	}
	image := filepath.Join(dst, meta.ImageFile)
	fi, err := os.Stat(image)
	if err != nil {
		return kernelMeta{}, err
	}
	meta.ImageSize = fi.Size()
	if meta.ImageSHA256, err = fileSHA256(image); err != nil {
		return kernelMeta{}, err
	}
	return meta, writeJSON(filepath.Join(dst, "kernel.json"), meta)
}

// checkDebMagic reports an error unless path starts like a Debian package.
func checkDebMagic(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 21)
	if _, err := io.ReadFull(f, head); err != nil || string(head) != "!<arch>\ndebian-binary" {
		return fmt.Errorf("%s is not a Debian package", path)
	}
	return nil
}

// extractDebFiles streams the package's file system tar, writes the kept
// module files below dst/modules and returns the vmlinuz contents. It sets
// meta.Release from the modules tree.
func extractDebFiles(ctx context.Context, deb, dst string, meta *kernelMeta) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run dpkg-deb: %w", err)
	}
	vmlinuz, walkErr := walkDebTar(tar.NewReader(stdout), dst, meta)
	if walkErr != nil {
		_ = cmd.Process.Kill()
	}
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); walkErr == nil && err != nil {
		walkErr = fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", deb, err, firstLine(stderr.Bytes()))
	}
	if walkErr != nil {
		return nil, walkErr
	}
	switch {
	case meta.Release == "":
		return nil, fmt.Errorf("%s has no lib/modules/<release> tree", deb)
	case vmlinuz == nil:
		return nil, fmt.Errorf("%s has no boot/vmlinuz-%s", deb, meta.Release)
	}
	return vmlinuz, nil
}

// walkDebTar does the work of extractDebFiles on the tar stream.
func walkDebTar(tr *tar.Reader, dst string, meta *kernelMeta) ([]byte, error) {
	var vmlinuz []byte
	var vmlinuzRelease string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read package files: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if rel, ok := strings.CutPrefix(name, "boot/vmlinuz-"); ok {
			if vmlinuz, err = io.ReadAll(io.LimitReader(tr, 256<<20)); err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
			vmlinuzRelease = rel
			continue
		}
		rest, ok := strings.CutPrefix(name, "lib/modules/")
		release, rel, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 || !keepModuleFile(rel) {
			continue
		}
		if meta.Release == "" {
			meta.Release = release
		} else if meta.Release != release {
			return nil, fmt.Errorf("package holds modules of two releases, %s and %s", meta.Release, release)
		}
		if err := copyTarFile(tr, filepath.Join(dst, "modules", filepath.FromSlash(rel))); err != nil {
			return nil, err
		}
	}
	if vmlinuz != nil && meta.Release != "" && vmlinuzRelease != meta.Release {
		return nil, fmt.Errorf("package holds vmlinuz-%s but modules of %s", vmlinuzRelease, meta.Release)
	}
	return vmlinuz, nil
}

// copyTarFile writes the current tar entry to path (0644, parents 0755).
func copyTarFile(r io.Reader, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, filePerm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// firstLine returns the first non-empty line of b, for error messages.
func firstLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// lastLine returns the last non-empty line of b, for error messages.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
