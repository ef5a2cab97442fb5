package provision

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckStaticELF(t *testing.T) {
	if err := checkStaticELF(staticBinary(t), "guest binary"); err != nil {
		t.Errorf("static Go binary: %v", err)
	}
	err := checkStaticELF("/bin/ls", "guest binary")
	if !errors.Is(err, ErrDynamicGuestBinary) || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("/bin/ls: %v, want ErrDynamicGuestBinary", err)
	}
	if err := checkStaticELF("/etc/passwd", "guest binary"); err == nil || errors.Is(err, ErrDynamicGuestBinary) {
		t.Errorf("/etc/passwd: %v, want a not-ELF error", err)
	}
}

// fakeKernel returns a Kernel over the synthetic modules tree.
func fakeKernel(t *testing.T) Kernel {
	t.Helper()
	image := filepath.Join(t.TempDir(), "vmlinux")
	os.WriteFile(image, []byte("not really a kernel"), 0o644)
	return Kernel{Release: "9.9.9-test", Image: image, ModulesDir: fakeTree(t)}
}

// busyboxPath returns the system's static busybox or skips.
func busyboxPath(t *testing.T) string {
	t.Helper()
	if err := checkStaticBusybox(DefaultBusybox); err != nil {
		t.Skipf("no static busybox (apt-get install busybox-static): %v", err)
	}
	return DefaultBusybox
}

func TestBuildImage(t *testing.T) {
	ctx := context.Background()
	cfg := ImageConfig{
		CacheDir:        t.TempDir(),
		Kernel:          fakeKernel(t),
		GuestBinary:     staticBinary(t),
		Busybox:         busyboxPath(t),
		Modules:         []string{"a"},
		OptionalModules: []string{"af_packet", "nonexistent"},
	}
	img, err := BuildImage(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if img.Kernel != cfg.Kernel.Image || img.KernelRelease != "9.9.9-test" || strings.Join(img.Modules, " ") != "c b a" {
		t.Errorf("image = %+v", img)
	}
	data, err := os.ReadFile(img.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	archives, err := readNewc(data)
	if err != nil || len(archives) != 1 {
		t.Fatalf("readNewc: %d archives, %v", len(archives), err)
	}
	files := map[string]cpioFile{}
	for _, f := range archives[0] {
		files[f.name] = f
	}
	guest, _ := os.ReadFile(cfg.GuestBinary)
	want := map[string]struct {
		mode uint32
		data string
	}{
		"init":                           {0o100755, string(guest)},
		"bin/sh":                         {0o120777, "busybox"},
		"bin/sha256sum":                  {0o120777, "busybox"},
		"sbin/poweroff":                  {0o120777, "/init"},
		"sbin/init":                      {0o120777, "/init"},
		"tmp":                            {0o041777, ""},
		"opt/hostlab/bin":                {0o040755, ""},
		"lib/modules/hostlab/load-order": {0o100644, "c.ko\nb.ko\na.ko\n"},
		"etc/passwd":                     {0o100644, "root:x:0:0:root:/root:/bin/sh\n"},
	}
	for name, w := range want {
		if f, ok := files[name]; !ok || f.mode != w.mode || string(f.data) != w.data {
			t.Errorf("%s: present %v mode %o, want mode %o and the expected content", name, ok, f.mode, w.mode)
		}
	}
	for _, name := range []string{"bin/init", "bin/poweroff", "bin/reboot", "bin/halt", "linuxrc", "bin/linuxrc"} {
		if _, ok := files[name]; ok {
			t.Errorf("%s must not be in the image", name)
		}
	}
	if f := files["lib/modules/hostlab/a.ko"]; !bytes.HasPrefix(f.data, []byte("\x7fELF")) {
		t.Error("a.ko missing or not an ELF object")
	}
	for _, p := range []string{img.Initrd, filepath.Join(filepath.Dir(img.Initrd), "image.json")} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v, %v; want mode 0644", p, fi.Mode(), err)
		}
	}

	// Same inputs: a cache hit that leaves the file alone.
	before, _ := os.Stat(img.Initrd)
	img2, err := BuildImage(ctx, cfg)
	after, _ := os.Stat(img.Initrd)
	if err != nil || img2.Initrd != img.Initrd || !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Errorf("second build: %+v, %v; want the cached image", img2, err)
	}

	// Same inputs in another cache: identical bytes.
	cfg.CacheDir = t.TempDir()
	img3, err := BuildImage(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	data3, _ := os.ReadFile(img3.Initrd)
	if img3.Key != img.Key || !bytes.Equal(data, data3) {
		t.Error("rebuild in another cache is not byte-for-byte identical")
	}

	// Another module list: another key.
	cfg.Modules = []string{"b"}
	img4, err := BuildImage(ctx, cfg)
	if err != nil || img4.Key == img.Key {
		t.Errorf("build with other modules: key %s, %v; want a new key", img4.Key, err)
	}
}

func TestBuildImageRejectsDynamicGuest(t *testing.T) {
	cfg := ImageConfig{CacheDir: t.TempDir(), Kernel: fakeKernel(t), GuestBinary: "/bin/ls"}
	if _, err := BuildImage(context.Background(), cfg); !errors.Is(err, ErrDynamicGuestBinary) {
		t.Errorf("BuildImage with /bin/ls: %v, want ErrDynamicGuestBinary", err)
	}
}

func TestBuildImageRealKernel(t *testing.T) {
	dir, _ := realKernel(t)
	k, err := loadKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ImageConfig{CacheDir: t.TempDir(), Kernel: k, GuestBinary: staticBinary(t), Busybox: busyboxPath(t)}
	start := time.Now()
	img, err := BuildImage(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)
	start = time.Now()
	if _, err := BuildImage(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(img.Initrd)
	t.Logf("image %s: %d KB initrd, modules %v; cold %s, warm %s", img.Key[:16], fi.Size()>>10,
		img.Modules, cold.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func TestCheckStaticBusybox(t *testing.T) {
	err := checkStaticBusybox("/bin/ls")
	if err == nil || errors.Is(err, ErrDynamicGuestBinary) || !strings.Contains(err.Error(), "busybox-static") {
		t.Errorf("checkStaticBusybox(/bin/ls) = %v, want advice to install busybox-static", err)
	}
}

// TestBuildImageRebuildsDamagedCache damages a cached image every way a
// crash or a disk could — a flipped byte at the same size, a truncated
// initrd, garbage or an old image.json without a checksum — and expects
// each to be rebuilt, byte for byte, never used.
func TestBuildImageRebuildsDamagedCache(t *testing.T) {
	ctx := context.Background()
	cfg := ImageConfig{CacheDir: t.TempDir(), Kernel: fakeKernel(t), GuestBinary: staticBinary(t), Busybox: busyboxPath(t), Modules: []string{"a"}}
	img, err := BuildImage(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(img.Initrd)
	meta := filepath.Join(filepath.Dir(img.Initrd), "image.json")
	goodMeta, _ := os.ReadFile(meta)
	damages := map[string]func(){
		"flipped byte": func() {
			b := bytes.Clone(good)
			b[len(b)/2] ^= 0xff
			os.WriteFile(img.Initrd, b, 0o644)
		},
		"truncated initrd":   func() { os.WriteFile(img.Initrd, good[:len(good)/2], 0o644) },
		"garbage image.json": func() { os.WriteFile(meta, []byte("{not json"), 0o644) },
		"image.json without checksum": func() {
			os.WriteFile(meta, bytes.Replace(goodMeta, []byte(img.InitrdSHA256), nil, 1), 0o644)
		},
	}
	for name, damage := range damages {
		damage()
		got, err := BuildImage(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		data, _ := os.ReadFile(got.Initrd)
		if !bytes.Equal(data, good) || got.InitrdSHA256 != img.InitrdSHA256 {
			t.Errorf("%s: the damaged image was used, not rebuilt", name)
		}
	}
}
