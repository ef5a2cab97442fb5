package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Modes of a lab folder and the secrets in it. A lab folder holds the
// client's private key (id_ed25519) and each guest's initrd, which carries
// the guest's private host key. QEMU runs as another user (libvirt-qemu on
// Debian) and opens the initrds and pcap files itself, so the folder lets
// QEMU's group in (traverse only, no listing) and nobody else; without a
// known QEMU user it falls back to traverse for everyone, still without
// listing.
const (
	labDirMode         = 0o710
	labDirModeFallback = 0o711
	secretMode         = 0o600
	// initrdModeFallback is an initrd's mode when no QEMU user is known:
	// QEMU must read it, whoever it runs as.
	initrdModeFallback = 0o644
)

// makeLabDir creates dir and gives it labDirMode with QEMU's group,
// whatever the umask. Parents it creates (HOME/labs) are 0755, so that QEMU
// can traverse them.
func makeLabDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	_, gid, ok := qemuUser()
	if !ok {
		return os.Chmod(dir, labDirModeFallback)
	}
	if err := os.Chown(dir, os.Geteuid(), gid); err != nil {
		return fmt.Errorf("give %s to the qemu group: %w", dir, err)
	}
	return os.Chmod(dir, labDirMode)
}

// handInitrd makes an initrd (which holds a private host key) readable by
// QEMU and nobody else: owned by the QEMU user, mode 0600.
func handInitrd(path string) error {
	uid, gid, ok := qemuUser()
	if !ok {
		return os.Chmod(path, initrdModeFallback)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("hand %s to the qemu user: %w", path, err)
	}
	return os.Chmod(path, secretMode)
}
