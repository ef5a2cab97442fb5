package provision

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// Guest paths of the per-guest files WriteGuestInitrd adds.
const (
	GuestHostKeyPath        = "/etc/hostlab/ssh_host_ed25519_key"
	GuestAuthorizedKeysPath = "/etc/hostlab/authorized_keys"
)

// WriteGuestInitrd writes out: the base initrd followed by a second newc
// archive holding the guest's SSH host key (GuestHostKeyPath) and the keys
// allowed to log in (GuestAuthorizedKeysPath). The kernel unpacks
// concatenated archives in order.
//
// out is 0600, since it holds a private key; QEMU runs as another user, so
// the caller hands it to that user (see lab).
func WriteGuestInitrd(ctx context.Context, base, out string, hostKey KeyPair, authorized []ssh.PublicKey) error {
	if len(hostKey.PrivatePEM) == 0 {
		return fmt.Errorf("write guest initrd %s: host key not set", out)
	}
	var keys bytes.Buffer
	for _, k := range authorized {
		keys.Write(ssh.MarshalAuthorizedKey(k))
	}
	extra := newCPIO()
	extra.addFile(GuestHostKeyPath, 0o600, hostKey.PrivatePEM)
	extra.addFile(GuestAuthorizedKeysPath, 0o644, keys.Bytes())

	src, err := os.Open(base)
	if err != nil {
		return fmt.Errorf("write guest initrd: %w", err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), ".tmp-"+filepath.Base(out)+"-")
	if err != nil {
		return fmt.Errorf("write guest initrd: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = copyInitrd(ctx, tmp, src, extra)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), out)
	}
	if err != nil {
		return fmt.Errorf("write guest initrd %s: %w", out, err)
	}
	return nil
}

// copyInitrd copies base to w, pads it to a multiple of 4 bytes (archives
// must start 4-aligned; the kernel skips zero padding) and appends extra.
// Between files, io.Copy uses copy_file_range; the copy of a few MB is not
// interruptible, so ctx is checked before it.
func copyInitrd(ctx context.Context, w io.Writer, base io.Reader, extra *cpioArchive) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := io.Copy(w, base)
	if err != nil {
		return err
	}
	if r := n % 4; r != 0 {
		if _, err := w.Write(make([]byte, 4-r)); err != nil {
			return err
		}
	}
	_, err = extra.writeTo(w)
	return err
}
