package provision

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// File type bits of a newc header's mode field.
const (
	cpioModeDir     = 0o040000
	cpioModeRegular = 0o100000
	cpioModeSymlink = 0o120000
)

// cpioTrailer names the entry that ends a newc archive.
const cpioTrailer = "TRAILER!!!"

// cpioEntry is one file, directory or symlink of an archive.
type cpioEntry struct {
	mode uint32 // type and permission bits
	data []byte // file contents, or the symlink target
}

// cpioArchive collects entries and writes them as a reproducible newc
// archive: sorted by name, inode numbers by position, mtime 0, owner root.
type cpioArchive struct {
	entries map[string]cpioEntry
}

// newCPIO returns an empty archive.
func newCPIO() *cpioArchive {
	return &cpioArchive{entries: make(map[string]cpioEntry)}
}

// cpioName turns an absolute or relative path into the archive's relative
// form ("etc/passwd"), the form the kernel and cpio(1) expect.
func cpioName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// addParents adds missing parent directories of name with mode 0755.
func (a *cpioArchive) addParents(name string) {
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := a.entries[dir]; !ok {
			a.entries[dir] = cpioEntry{mode: cpioModeDir | 0o755}
		}
	}
}

// addDir adds a directory (and its missing parents); perm holds the
// permission, setuid, setgid and sticky bits (0o1777).
func (a *cpioArchive) addDir(name string, perm uint32) {
	name = cpioName(name)
	a.addParents(name)
	a.entries[name] = cpioEntry{mode: cpioModeDir | perm&0o7777}
}

// addFile adds a regular file; an earlier entry of the same name is replaced.
func (a *cpioArchive) addFile(name string, perm uint32, data []byte) {
	name = cpioName(name)
	a.addParents(name)
	a.entries[name] = cpioEntry{mode: cpioModeRegular | perm&0o7777, data: data}
}

// addSymlink adds a symbolic link name pointing to target.
func (a *cpioArchive) addSymlink(name, target string) {
	name = cpioName(name)
	a.addParents(name)
	a.entries[name] = cpioEntry{mode: cpioModeSymlink | 0o777, data: []byte(target)}
}

// writeTo writes the archive, including its trailer, to w. The output length
// is a multiple of 4, so another archive may follow directly.
func (a *cpioArchive) writeTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(a.entries))
	for name := range a.entries {
		names = append(names, name)
	}
	sort.Strings(names)
	cw := &countWriter{w: bufio.NewWriterSize(w, 1<<16)}
	for i, name := range names {
		e := a.entries[name]
		nlink := 1
		if e.mode&0o170000 == cpioModeDir {
			nlink = 2
		}
		writeCPIORecord(cw, uint32(i+1), e.mode, nlink, name, e.data)
	}
	writeCPIORecord(cw, 0, 0, 1, cpioTrailer, nil)
	if cw.err == nil {
		cw.err = cw.w.(*bufio.Writer).Flush()
	}
	if cw.err != nil {
		return cw.n, fmt.Errorf("write cpio: %w", cw.err)
	}
	return cw.n, nil
}

// writeCPIORecord writes one newc header, name and data with their padding.
func writeCPIORecord(w *countWriter, ino, mode uint32, nlink int, name string, data []byte) {
	// Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	io.WriteString(w, name)
	w.Write([]byte{0})
	w.pad()
	w.Write(data)
	w.pad()
}

// countWriter counts bytes written and remembers the first error.
type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

// Write implements io.Writer; after an error it discards further writes.
func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// pad writes zero bytes up to the next multiple of 4.
func (c *countWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.Write(make([]byte, 4-r))
	}
}
