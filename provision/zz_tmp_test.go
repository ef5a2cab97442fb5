package provision

import (
	"context"
	"os"
	"testing"
)

func TestZZSize(t *testing.T) {
	dir, _ := realKernel(t)
	k, _ := loadKernel(dir)
	img, err := BuildImage(context.Background(), ImageConfig{CacheDir: t.TempDir(), Kernel: k, GuestBinary: staticBinary(t), Busybox: busyboxPath(t)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(img.Initrd)
	a, _ := readNewc(b)
	for _, f := range a[0] {
		if len(f.data) > 50000 {
			t.Log(f.name, len(f.data))
		}
	}
}
