package provision

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
)

// Upload copies the local file to remote (an absolute guest path) with the
// given permission bits, creating parent directories. It compares sha256
// checksums first and skips the transfer when remote already has the same
// content, fixing only the mode if needed; changed reports whether anything
// was written. The file is written to remote+".tmp", renamed into place and
// its checksum verified. Cancelling ctx aborts the transfer.
func (c *Client) Upload(ctx context.Context, local, remote string, mode os.FileMode) (changed bool, err error) {
	if !path.IsAbs(remote) {
		return false, fmt.Errorf("upload %s: remote path %q is not absolute", local, remote)
	}
	want, err := fileSHA256(local)
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", local, err)
	}
	sc, err := sftp.NewClient(c.ssh)
	if err != nil {
		return false, fmt.Errorf("upload %s to %s: start sftp: %w", local, c.addr, err)
	}
	defer sc.Close()
	stop := context.AfterFunc(ctx, func() { sc.Close() })
	defer stop()
	changed, err = c.upload(ctx, sc, local, remote, want, mode.Perm())
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return changed, fmt.Errorf("upload %s to %s:%s: %w", local, c.addr, remote, err)
	}
	return changed, nil
}

// upload does the work of Upload once the sftp client is open.
func (c *Client) upload(ctx context.Context, sc *sftp.Client, local, remote, want string, perm os.FileMode) (bool, error) {
	if fi, err := sc.Stat(remote); err == nil && fi.Mode().IsRegular() {
		got, err := c.remoteSHA256(ctx, remote)
		if err != nil {
			return false, err
		}
		if got == want {
			if fi.Mode().Perm() == perm {
				return false, nil
			}
			return true, sc.Chmod(remote, perm)
		}
	}
	if err := sc.MkdirAll(path.Dir(remote)); err != nil {
		return false, fmt.Errorf("create parent dir: %w", err)
	}
	src, err := os.Open(local)
	if err != nil {
		return false, err
	}
	defer src.Close()
	tmp := remote + ".tmp"
	dst, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return false, fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return true, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := dst.Close(); err != nil {
		return true, fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := sc.Chmod(tmp, perm); err != nil {
		return true, fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := sc.PosixRename(tmp, remote); err != nil {
		// Servers without posix-rename@openssh.com refuse to replace a file.
		_ = sc.Remove(remote)
		if err := sc.Rename(tmp, remote); err != nil {
			return true, fmt.Errorf("rename %s: %w", tmp, err)
		}
	}
	got, err := c.remoteSHA256(ctx, remote)
	if err != nil {
		return true, err
	}
	if got != want {
		return true, fmt.Errorf("checksum after upload is %s, want %s", got, want)
	}
	return true, nil
}

// remoteSHA256 returns the hex sha256 of a guest file, computed by the
// guest's sha256sum.
func (c *Client) remoteSHA256(ctx context.Context, remote string) (string, error) {
	out, err := c.Output(ctx, "sha256sum "+shellQuote(remote))
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	sum, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if len(sum) != 64 {
		return "", fmt.Errorf("checksum: unexpected sha256sum output %q", tail(string(out), 100))
	}
	return sum, nil
}
