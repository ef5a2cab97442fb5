package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Permissions of everything written to the cache: QEMU runs as another user
// and must read kernels and initrds.
const (
	dirPerm  = 0o755
	filePerm = 0o644
)

// staleTempAge is how old a leftover staging directory must be before a later
// run removes it; younger ones may belong to a concurrent run.
const staleTempAge = time.Hour

// mkdirPublic creates dir and its parents and makes dir itself 0755
// regardless of the umask.
func mkdirPublic(dir string) error {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	return os.Chmod(dir, dirPerm)
}

// stageDir creates a staging directory inside parent (so that a later rename
// stays on one file system) after removing stale ones left by killed runs.
func stageDir(parent, prefix string) (string, error) {
	if err := mkdirPublic(parent); err != nil {
		return "", fmt.Errorf("create %s: %w", parent, err)
	}
	removeStale(parent)
	dir, err := os.MkdirTemp(parent, ".tmp-"+prefix+"-")
	if err != nil {
		return "", fmt.Errorf("create staging dir in %s: %w", parent, err)
	}
	return dir, nil
}

// removeStale deletes .tmp-* entries in parent older than staleTempAge.
func removeStale(parent string) {
	matches, _ := filepath.Glob(filepath.Join(parent, ".tmp-*"))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && time.Since(fi.ModTime()) > staleTempAge {
			_ = os.RemoveAll(m)
		}
	}
}

// publishDir renames the staged directory src to dst. If dst appeared in the
// meantime (a concurrent run won the race), src is discarded and the caller
// should use dst.
func publishDir(src, dst string) error {
	if err := makePublic(src); err != nil {
		return fmt.Errorf("publish %s: %w", dst, err)
	}
	err := os.Rename(src, dst)
	if err == nil {
		return nil
	}
	if _, statErr := os.Stat(dst); statErr == nil {
		_ = os.RemoveAll(src)
		return nil
	}
	return fmt.Errorf("publish %s: %w", dst, err)
}

// makePublic sets directories below root to 0755 and files to 0644, so the
// result does not depend on the umask.
func makePublic(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			return os.Chmod(p, dirPerm)
		case d.Type().IsRegular():
			return os.Chmod(p, filePerm)
		}
		return nil
	})
}

// writeFilePublic writes data to path with mode perm regardless of the umask.
func writeFilePublic(path string, data []byte, perm os.FileMode) error {
	if err := os.WriteFile(path, data, perm); err != nil {
		return err
	}
	return os.Chmod(path, perm)
}

// writeJSON writes v as indented JSON to path (0644).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFilePublic(path, append(b, '\n'), filePerm)
}

// readJSON decodes the JSON file at path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// fileSHA256 returns the hex sha256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// bytesSHA256 returns the hex sha256 of b.
func bytesSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkFileSize reports an error unless path is a regular file of size want.
func checkFileSize(path string, want int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() != want {
		return fmt.Errorf("%s has %d bytes, want %d", path, fi.Size(), want)
	}
	return nil
}

// isNotExist reports whether err says a file does not exist.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
