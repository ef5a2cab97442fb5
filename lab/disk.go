package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// minFreeBytes is the free space Up wants under Home: a kernel cache entry
// (~155 MB), an image and per-guest initrds.
const minFreeBytes = 512 << 20

// ErrDiskFull reports too little free space for a lab.
var ErrDiskFull = errors.New("not enough free disk space")

// CheckFreeSpace checks the file system holding dir (or its nearest existing
// parent) for need free bytes.
func CheckFreeSpace(dir string, need uint64) error {
	p := dir
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			if free := st.Bavail * uint64(st.Bsize); free < need {
				return fmt.Errorf("%w: %d MiB free at %s, hostlab needs %d MiB: free some space or point --home elsewhere", ErrDiskFull, free>>20, p, need>>20)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("check free space at %s: %w", p, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("check free space at %s: %w", dir, err)
		}
		p = parent
	}
}
