package provision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// imageFormatVersion is part of every image key; bump it whenever the
// initramfs layout changes so that cached images are rebuilt.
const imageFormatVersion = 5

// DefaultBusybox is the busybox binary copied into images (Debian package
// busybox-static).
const DefaultBusybox = "/bin/busybox"

// guestModulesDir is where the guest finds its modules and load-order file.
const guestModulesDir = "lib/modules/hostlab"

// InitTools are the other programs of the multi-call guest binary, linked
// into /bin so scenarios can run them without an upload.
var InitTools = []string{"hostlab-echo-server", "hostlab-echo-client", "hostlab-clock", "hostlab-sockstat", "hostlab-capture", "hostlab-sysctl", "hostlab-link"}

// excludedApplets are busybox applets not linked, because /init handles
// them (or they would replace /init).
var excludedApplets = map[string]bool{
	"busybox": true, "init": true, "linuxrc": true, "shutdown": true, "poweroff": true, "reboot": true, "halt": true,
}

// ImageConfig describes a guest image.
type ImageConfig struct {
	// CacheDir is the cache root; images go to CacheDir/images/<key>.
	CacheDir string
	// Kernel is the kernel the image boots with (from FetchKernel).
	Kernel Kernel
	// GuestBinary is a static x86-64 executable that becomes /init.
	GuestBinary string
	// Busybox is a static busybox binary; empty means DefaultBusybox.
	Busybox string
	// Modules are loaded by the guest, with their dependencies; nil means
	// DefaultModules.
	Modules []string
	// OptionalModules are loaded when present; nil means
	// DefaultOptionalModules, an empty slice means none.
	OptionalModules []string
}

// Image is a built, cached guest image.
type Image struct {
	// Key is the hex sha256 content key of the image.
	Key string `json:"key"`
	// Kernel is the path of the kernel image to boot.
	Kernel string `json:"kernel"`
	// Initrd is the path of the initramfs (newc cpio).
	Initrd string `json:"initrd"`
	// KernelRelease is the kernel release, e.g. "6.1.0-56-amd64".
	KernelRelease string `json:"kernel_release"`
	// Modules lists the module names the guest loads, in load order.
	Modules []string `json:"modules"`
	// InitrdSize is the size of Initrd in bytes.
	InitrdSize int64 `json:"initrd_size"`
	// InitrdSHA256 is the hex sha256 of Initrd, checked on every use: a
	// damaged cache entry is rebuilt, never booted.
	InitrdSHA256 string `json:"initrd_sha256"`
}

// BuildImage returns the image for cfg from the cache, building it when it
// is not cached. The initramfs is byte-for-byte reproducible.
func BuildImage(ctx context.Context, cfg ImageConfig) (Image, error) {
	if cfg.Busybox == "" {
		cfg.Busybox = DefaultBusybox
	}
	if cfg.Modules == nil {
		cfg.Modules = DefaultModules
	}
	if cfg.OptionalModules == nil {
		cfg.OptionalModules = DefaultOptionalModules
	}
	switch {
	case cfg.CacheDir == "":
		return Image{}, errors.New("build image: cache dir not set")
	case cfg.Kernel.Image == "" || cfg.Kernel.ModulesDir == "":
		return Image{}, errors.New("build image: kernel not set (use FetchKernel)")
	case cfg.GuestBinary == "":
		return Image{}, errors.New("build image: guest binary not set")
	}
	if err := checkStaticELF(cfg.GuestBinary, "guest binary"); err != nil {
		return Image{}, err
	}
	if err := checkStaticBusybox(cfg.Busybox); err != nil {
		return Image{}, err
	}
	guest, err := os.ReadFile(cfg.GuestBinary)
	if err != nil {
		return Image{}, fmt.Errorf("read guest binary: %w", err)
	}
	busybox, err := os.ReadFile(cfg.Busybox)
	if err != nil {
		return Image{}, fmt.Errorf("read busybox: %w", err)
	}
	mods, err := resolveModules(ctx, cfg.Kernel.ModulesDir, cfg.Kernel.Release, cfg.Modules, cfg.OptionalModules)
	if err != nil {
		return Image{}, fmt.Errorf("build image: %w", err)
	}
	kernelHash := cfg.Kernel.ImageSHA256
	if kernelHash == "" {
		if kernelHash, err = fileSHA256(cfg.Kernel.Image); err != nil {
			return Image{}, fmt.Errorf("hash kernel image: %w", err)
		}
	}
	key := imageKey(cfg, kernelHash, guest, busybox, mods)
	images := filepath.Join(cfg.CacheDir, "images")
	dir := filepath.Join(images, key[:16])
	if img, err := loadImage(dir, key); err == nil {
		img.Kernel = cfg.Kernel.Image
		return img, nil
	}
	_ = os.RemoveAll(dir) // absent or invalid
	applets, err := busyboxApplets(ctx, cfg.Busybox)
	if err != nil {
		return Image{}, err
	}
	stage, err := stageDir(images, key[:16])
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(stage)
	img := Image{Key: key, Kernel: cfg.Kernel.Image, KernelRelease: cfg.Kernel.Release}
	for _, m := range mods {
		img.Modules = append(img.Modules, m.name)
	}
	initrd := filepath.Join(stage, "initrd.cpio")
	if img.InitrdSize, err = writeBaseInitrd(initrd, guest, busybox, applets, mods); err != nil {
		return Image{}, err
	}
	if img.InitrdSHA256, err = fileSHA256(initrd); err != nil {
		return Image{}, err
	}
	if err := writeJSON(filepath.Join(stage, "image.json"), img); err != nil {
		return Image{}, err
	}
	if err := publishDir(stage, dir); err != nil {
		return Image{}, err
	}
	return loadImage(dir, key)
}

// imageKey hashes everything the image content depends on.
func imageKey(cfg ImageConfig, kernelHash string, guest, busybox []byte, mods []kmod) string {
	h := sha256.New()
	fmt.Fprintf(h, "hostlab image format %d\n", imageFormatVersion)
	fmt.Fprintf(h, "kernel %s %s\n", cfg.Kernel.Release, kernelHash)
	fmt.Fprintf(h, "guest %s\nbusybox %s\n", bytesSHA256(guest), bytesSHA256(busybox))
	fmt.Fprintf(h, "modules %q optional %q\n", cfg.Modules, cfg.OptionalModules)
	for _, m := range mods {
		fmt.Fprintf(h, "module %s %s\n", m.name, bytesSHA256(m.data))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// loadImage reads image.json in dir and checks it against key and the
// initrd on disk (size and sha256). Image.Kernel is filled in by the
// caller.
func loadImage(dir, key string) (Image, error) {
	var img Image
	if err := readJSON(filepath.Join(dir, "image.json"), &img); err != nil {
		return Image{}, err
	}
	if img.Key != key {
		return Image{}, fmt.Errorf("%s: image key %s, want %s", dir, img.Key, key)
	}
	img.Initrd = filepath.Join(dir, "initrd.cpio")
	if err := checkFileSize(img.Initrd, img.InitrdSize); err != nil {
		return Image{}, err
	}
	sum, err := fileSHA256(img.Initrd)
	if err != nil {
		return Image{}, err
	}
	if img.InitrdSHA256 == "" || sum != img.InitrdSHA256 {
		return Image{}, fmt.Errorf("%s: initrd sha256 %s, want %q", dir, sum, img.InitrdSHA256)
	}
	return img, nil
}

// busyboxApplets lists the applets of the busybox binary at path, sorted.
func busyboxApplets(ctx context.Context, path string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "--list")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %s --list: %w: %s", path, err, firstLine(stderr.Bytes()))
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if !excludedApplets[a] && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	sort.Strings(applets)
	return applets, nil
}

// writeBaseInitrd writes the image's initramfs to path and returns its size.
func writeBaseInitrd(path string, guest, busybox []byte, applets []string, mods []kmod) (int64, error) {
	a := newCPIO()
	for _, d := range []string{"bin", "sbin", "etc", "etc/hostlab", "proc", "sys", "dev", "run",
		"var", guestModulesDir, "opt/hostlab/bin"} {
		a.addDir(d, 0o755)
	}
	a.addDir("tmp", 0o1777)
	a.addDir("root", 0o700)
	a.addFile("init", 0o755, guest)
	a.addFile("bin/busybox", 0o755, busybox)
	for _, app := range applets {
		a.addSymlink("bin/"+app, "busybox")
	}
	for _, s := range []string{"shutdown", "poweroff", "reboot", "halt", "init"} {
		a.addSymlink("sbin/"+s, "/init")
	}
	for _, s := range InitTools {
		a.addSymlink("bin/"+s, "/init")
	}
	var order strings.Builder
	for _, m := range mods {
		a.addFile(guestModulesDir+"/"+m.name+".ko", 0o644, m.data)
		order.WriteString(m.name + ".ko\n")
	}
	a.addFile(guestModulesDir+"/load-order", 0o644, []byte(order.String()))
	a.addFile("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	a.addFile("etc/group", 0o644, []byte("root:x:0:\n"))
	a.addFile("etc/hosts", 0o644, []byte("127.0.0.1\tlocalhost\n::1\tlocalhost\n"))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, filePerm)
	if err != nil {
		return 0, err
	}
	n, err := a.writeTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return n, nil
}
