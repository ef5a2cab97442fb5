package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// customKernel validates a user-supplied kernel image and modules tree and
// caches the image (as a PVH vmlinux when one can be extracted) in
// cacheDir/kernels/custom-<release>-<sha256 prefix>. The modules tree is
// used in place: only BuildImage reads it.
func customKernel(ctx context.Context, cacheDir string, spec KernelSpec, progress func(string)) (Kernel, error) {
	if spec.Image == "" {
		return Kernel{}, errors.New("kernel modules given without a kernel image: set --kernel")
	}
	if spec.ModulesDir == "" {
		return Kernel{}, errors.New("kernel image given without its modules: set --modules to the lib/modules/<release> directory")
	}
	if spec.Package != "" {
		return Kernel{}, errors.New("set either --kernel-package or --kernel with --modules, not both")
	}
	image, err := os.ReadFile(spec.Image)
	if err != nil {
		return Kernel{}, fmt.Errorf("read kernel image (fix --kernel): %w", err)
	}
	modules, err := filepath.Abs(spec.ModulesDir)
	if err != nil {
		return Kernel{}, err
	}
	if fi, err := os.Stat(filepath.Join(modules, "kernel")); err != nil || !fi.IsDir() {
		return Kernel{}, fmt.Errorf("modules dir %s has no kernel/ subdirectory: set --modules to lib/modules/<release>", spec.ModulesDir)
	}
	release := filepath.Base(modules)
	var imageRelease string
	switch {
	case isBzImage(image):
		imageRelease = bzImageRelease(image)
	case len(image) > 4 && string(image[:4]) == "\x7fELF":
		if err := checkVmlinux(spec.Image); err != nil {
			return Kernel{}, fmt.Errorf("kernel image %s cannot boot directly (fix --kernel, or pass the bzImage): %w", spec.Image, err)
		}
		imageRelease = vmlinuxRelease(image)
	default:
		return Kernel{}, fmt.Errorf("kernel image %s is neither a bzImage nor an ELF vmlinux (fix --kernel)", spec.Image)
	}
	if imageRelease != "" && imageRelease != release {
		return Kernel{}, fmt.Errorf("kernel image %s is release %s but modules dir %s is %s (fix --kernel or --modules)",
			spec.Image, imageRelease, spec.ModulesDir, release)
	}
	kernels := filepath.Join(cacheDir, "kernels")
	dir := filepath.Join(kernels, "custom-"+release+"-"+bytesSHA256(image)[:12])
	if k, ok := lookupKernel(dir, progress); ok && k.ModulesDir == modules {
		return k, nil
	}
	_ = os.RemoveAll(dir) // valid but for another modules dir
	stage, err := stageDir(kernels, "custom")
	if err != nil {
		return Kernel{}, err
	}
	defer os.RemoveAll(stage)
	entry := filepath.Join(stage, "entry")
	if err := mkdirPublic(entry); err != nil {
		return Kernel{}, err
	}
	meta := kernelMeta{Format: kernelFormatVersion, Release: release, ModulesDir: modules, Source: "custom", ImageFile: "vmlinux"}
	if isBzImage(image) {
		progress("extracting vmlinux from " + spec.Image)
		err = extractVmlinux(ctx, image, filepath.Join(entry, meta.ImageFile))
		if errors.Is(err, errNoVmlinux) {
			progress(fmt.Sprintf("kernel %s: %v; booting the bzImage (slower)", spec.Image, err))
			meta.ImageFile = "bzImage"
			err = writeFilePublic(filepath.Join(entry, meta.ImageFile), image, filePerm)
		}
	} else {
		err = writeFilePublic(filepath.Join(entry, meta.ImageFile), image, filePerm)
	}
	if err != nil {
		return Kernel{}, fmt.Errorf("cache kernel image %s: %w", spec.Image, err)
	}
	path := filepath.Join(entry, meta.ImageFile)
	fi, err := os.Stat(path)
	if err != nil {
		return Kernel{}, err
	}
	meta.ImageSize = fi.Size()
	if meta.ImageSHA256, err = fileSHA256(path); err != nil {
		return Kernel{}, err
	}
	if err := writeJSON(filepath.Join(entry, "kernel.json"), meta); err != nil {
		return Kernel{}, err
	}
	if err := publishDir(entry, dir); err != nil {
		return Kernel{}, err
	}
	return loadKernel(dir)
}
