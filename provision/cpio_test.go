package provision

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioFile is an entry decoded by readNewc.
type cpioFile struct {
	name  string
	ino   uint32
	mode  uint32
	nlink uint32
	mtime uint32
	data  []byte
}

// readNewc decodes one or more concatenated newc archives (with zero
// padding between them) into one entry list per archive.
func readNewc(b []byte) ([][]cpioFile, error) {
	var archives [][]cpioFile
	var cur []cpioFile
	off := 0
	for {
		for off < len(b) && b[off] == 0 && cur == nil {
			off++
		}
		if off >= len(b) {
			break
		}
		if off%4 != 0 || off+110 > len(b) || string(b[off:off+6]) != "070701" {
			return nil, fmt.Errorf("bad header at %d", off)
		}
		field := func(i int) uint32 {
			v, _ := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			return uint32(v)
		}
		f := cpioFile{ino: field(0), mode: field(1), nlink: field(4), mtime: field(5)}
		if field(2) != 0 || field(3) != 0 || field(12) != 0 {
			return nil, fmt.Errorf("entry at %d: uid/gid/check not zero", off)
		}
		size, namesize := int(field(6)), int(field(11))
		nameStart := off + 110
		if nameStart+namesize > len(b) || b[nameStart+namesize-1] != 0 {
			return nil, fmt.Errorf("entry at %d: bad name", off)
		}
		f.name = string(b[nameStart : nameStart+namesize-1])
		dataStart := align4(nameStart + namesize)
		if dataStart+size > len(b) {
			return nil, fmt.Errorf("entry %s: truncated", f.name)
		}
		f.data = b[dataStart : dataStart+size]
		off = align4(dataStart + size)
		if f.name == cpioTrailer {
			archives = append(archives, cur)
			cur = nil
			continue
		}
		if cur == nil {
			cur = []cpioFile{}
		}
		cur = append(cur, f)
	}
	if cur != nil {
		return nil, fmt.Errorf("archive without trailer")
	}
	return archives, nil
}

// sampleArchive returns an archive with all entry kinds.
func sampleArchive() *cpioArchive {
	a := newCPIO()
	a.addFile("/init", 0o755, []byte("#!/bin/sh\necho init\n"))
	a.addDir("/tmp", 0o1777)
	a.addFile("/etc/hostlab/key", 0o600, []byte("secret"))
	a.addSymlink("/bin/sh", "busybox")
	a.addFile("/bin/busybox", 0o755, bytes.Repeat([]byte{1, 2, 3}, 1001))
	a.addFile("/empty", 0o644, nil)
	return a
}

func TestCPIOReproducible(t *testing.T) {
	var b1, b2 bytes.Buffer
	if _, err := sampleArchive().writeTo(&b1); err != nil {
		t.Fatal(err)
	}
	if _, err := sampleArchive().writeTo(&b2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Fatal("two writes of the same archive differ")
	}
	if b1.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", b1.Len())
	}
}

func TestCPIOReadBack(t *testing.T) {
	var buf bytes.Buffer
	n, err := sampleArchive().writeTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("writeTo = %d, %v; buffer has %d", n, err, buf.Len())
	}
	archives, err := readNewc(buf.Bytes())
	if err != nil || len(archives) != 1 {
		t.Fatalf("readNewc: %d archives, %v", len(archives), err)
	}
	var names []string
	byName := map[string]cpioFile{}
	for i, f := range archives[0] {
		names = append(names, f.name)
		byName[f.name] = f
		if f.ino != uint32(i+1) || f.mtime != 0 {
			t.Errorf("%s: ino %d mtime %d, want ino %d mtime 0", f.name, f.ino, f.mtime, i+1)
		}
	}
	want := "bin bin/busybox bin/sh empty etc etc/hostlab etc/hostlab/key init tmp"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("names = %q, want %q", got, want)
	}
	checks := []struct {
		name string
		mode uint32
		data string
	}{
		{"init", 0o100755, "#!/bin/sh\necho init\n"},
		{"tmp", 0o041777, ""},
		{"etc", 0o040755, ""},
		{"etc/hostlab/key", 0o100600, "secret"},
		{"bin/sh", 0o120777, "busybox"},
	}
	for _, c := range checks {
		if f := byName[c.name]; f.mode != c.mode || string(f.data) != c.data {
			t.Errorf("%s: mode %o data %q, want %o %q", c.name, f.mode, f.data, c.mode, c.data)
		}
	}
}

func TestCPIOSystemCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio(1) not installed")
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "a.cpio")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sampleArchive().writeTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	list, err := exec.Command("sh", "-c", "cpio -t --quiet < "+archive).Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	if got := strings.Fields(string(list)); len(got) != 9 || got[0] != "bin" || got[8] != "tmp" {
		t.Errorf("cpio -t listed %q", got)
	}

	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	cmd := exec.Command("sh", "-c", "cpio -idv --quiet --no-absolute-filenames < "+archive)
	cmd.Dir = out
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -idv: %v: %s", err, b)
	}
	if b, err := os.ReadFile(filepath.Join(out, "etc/hostlab/key")); err != nil || string(b) != "secret" {
		t.Errorf("extracted key = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(out, "etc/hostlab/key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("extracted key mode = %v, %v", fi.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(out, "bin/sh")); err != nil || target != "busybox" {
		t.Errorf("extracted symlink = %q, %v", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "bin/busybox")); err != nil || len(b) != 3003 {
		t.Errorf("extracted busybox: %d bytes, %v", len(b), err)
	}
}
