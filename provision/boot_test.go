package provision

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestBootQEMU boots the real kernel with a built image plus a per-guest
// archive under QEMU and checks, from the console, that the kernel unpacked
// both archives and that every module loads. It runs when
// HOSTLAB_TEST_BOOT=1 (TCG by default; HOSTLAB_TEST_ACCEL=kvm to change).
func TestBootQEMU(t *testing.T) {
	if os.Getenv("HOSTLAB_TEST_BOOT") != "1" {
		t.Skip("boots a VM for several seconds: set HOSTLAB_TEST_BOOT=1")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	dir, _ := realKernel(t)
	k, err := loadKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	initBin := filepath.Join(work, "bootinit")
	build := exec.Command("go", "build", "-o", initBin, "./testdata/bootinit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build bootinit: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	img, err := BuildImage(ctx, ImageConfig{CacheDir: work, Kernel: k, GuestBinary: initBin})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := GenerateKey()
	user, _ := GenerateKey()
	initrd := filepath.Join(work, "guest.cpio")
	if err := WriteGuestInitrd(ctx, img.Initrd, initrd, host, []ssh.PublicKey{user.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	accel := os.Getenv("HOSTLAB_TEST_ACCEL")
	if accel == "" {
		accel = "tcg"
	}
	args := []string{"-accel", accel, "-m", "256", "-nographic", "-no-reboot",
		"-kernel", img.Kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="}
	t.Logf("%s %s", qemu, strings.Join(args, " "))
	var console bytes.Buffer
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdout, cmd.Stderr = &console, &console
	start := time.Now()
	err = cmd.Run()
	t.Logf("qemu exited after %s: %v", time.Since(start).Round(time.Millisecond), err)
	out := console.String()
	for _, want := range []string{"HOSTLAB-INIT-OK", "netdev eth0", "hostkey mode -rw-------",
		"authorized_keys 81 bytes err=<nil>", "load virtio_net.ko: <nil>", "load button.ko: <nil>"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "load ") && !strings.HasSuffix(strings.TrimSpace(line), ": <nil>") {
			t.Errorf("guest: %s", line)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", out)
	}
}
