package provision

import (
	"context"
	"errors"
	"testing"
)

// fakeApt answers apt-cache depends like bookworm's lists: two meta
// packages, two kernel image packages.
const fakeApt = `case "$2" in
linux-image-amd64) echo linux-image-amd64; echo '  Depends: linux-image-6.1.0-57-amd64' ;;
linux-image-6.12-amd64) echo linux-image-6.12-amd64; echo '  Depends: linux-image-6.12.118+deb12-amd64' ;;
linux-image-6.1.0-57-amd64|linux-image-6.12.118+deb12-amd64) echo "$2"; echo '  Depends: kmod'; echo ' |Depends: initramfs-tools' ;;
linux-image-loop) echo '  Depends: linux-image-loop' ;;
*) echo 'E: No packages found' >&2; exit 100 ;;
esac
`

func TestResolveKernelPackage(t *testing.T) {
	fakeCommand(t, "apt-cache", fakeApt)
	ctx := context.Background()
	for in, want := range map[string]string{
		"":                                 "linux-image-6.1.0-57-amd64",
		"linux-image-amd64":                "linux-image-6.1.0-57-amd64",
		"linux-image-6.12-amd64":           "linux-image-6.12.118+deb12-amd64",
		"linux-image-6.12.118+deb12-amd64": "linux-image-6.12.118+deb12-amd64",
	} {
		if got, err := ResolveKernelPackage(ctx, t.TempDir(), in); err != nil || got != want {
			t.Errorf("ResolveKernelPackage(%q) = %q, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ResolveKernelPackage(ctx, t.TempDir(), "linux-image-6.99-amd64"); !errors.Is(err, ErrUnknownKernelPackage) {
		t.Errorf("unknown package: %v; want ErrUnknownKernelPackage", err)
	}
	for _, bad := range []string{"linux-image-loop", "vim", "-linux-image-amd64"} {
		if _, err := ResolveKernelPackage(ctx, t.TempDir(), bad); err == nil {
			t.Errorf("ResolveKernelPackage(%q) accepted", bad)
		}
	}
}
