package provision

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// kernelPayload describes one compression format a bzImage may carry its
// vmlinux in.
type kernelPayload struct {
	name  string
	magic []byte
	// command decompresses stdin to stdout; nil means gzip in Go.
	command []string
}

// kernelPayloads lists the formats tried, Debian's (xz) first.
var kernelPayloads = []kernelPayload{
	{name: "xz", magic: []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, command: []string{"xz", "-dc", "--single-stream"}},
	{name: "zstd", magic: []byte{0x28, 0xb5, 0x2f, 0xfd}, command: []string{"zstd", "-dc"}},
	{name: "gzip", magic: []byte{0x1f, 0x8b, 0x08}},
}

// maxPayloadTries bounds how many magic matches of one format are tried;
// short magics also match by chance inside compressed data.
const maxPayloadTries = 8

// errNoVmlinux reports that no bootable vmlinux could be extracted.
var errNoVmlinux = errors.New("no PVH-bootable vmlinux found in the kernel image")

// extractVmlinux decompresses the vmlinux embedded in a bzImage into dst
// and checks it is an x86-64 ELF with a PVH entry note. Decompressors may
// exit non-zero on the data trailing the payload; the ELF check decides.
func extractVmlinux(ctx context.Context, bz []byte, dst string) error {
	var tried []error
	for _, p := range kernelPayloads {
		rest, off := bz, 0
		for try := 0; try < maxPayloadTries; try++ {
			i := bytes.Index(rest, p.magic)
			if i < 0 {
				break
			}
			off += i
			err := decompressTo(ctx, p, bz[off:], dst)
			if err == nil {
				err = checkVmlinux(dst)
			}
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			tried = append(tried, fmt.Errorf("%s at offset %d: %w", p.name, off, err))
			off += len(p.magic)
			rest = bz[off:]
		}
	}
	_ = os.Remove(dst)
	return fmt.Errorf("%w: %w", errNoVmlinux, errors.Join(tried...))
}

// decompressTo writes the decompressed payload to dst; the decompressor's
// exit status is ignored because trailing data makes some fail.
func decompressTo(ctx context.Context, p kernelPayload, payload []byte, dst string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, filePerm)
	if err != nil {
		return err
	}
	defer f.Close()
	if p.command == nil {
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return err
		}
		zr.Multistream(false)
		_, err = io.Copy(f, zr)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, gzip.ErrChecksum) {
			return err
		}
	} else {
		cmd := exec.CommandContext(ctx, p.command[0], p.command[1:]...)
		cmd.Stdin, cmd.Stdout = bytes.NewReader(payload), f
		if err := cmd.Run(); err != nil && ctx.Err() != nil {
			return ctx.Err()
		} else if errors.Is(err, exec.ErrNotFound) {
			return err
		}
	}
	return f.Close()
}

// checkVmlinux verifies that path is an x86-64 ELF executable QEMU can
// boot directly, i.e. it carries a Xen PVH entry note.
func checkVmlinux(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("not an ELF file: %w", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		return fmt.Errorf("ELF %s %s, want x86-64 executable", f.Machine, f.Type)
	}
	if !hasPVHNote(f) {
		return fmt.Errorf("ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)")
	}
	return nil
}

// xenPVHNote is XEN_ELFNOTE_PHYS32_ENTRY, the note QEMU needs to boot an ELF
// kernel.
const xenPVHNote = 18

// hasPVHNote reports whether f has a "Xen" note of type XEN_ELFNOTE_PHYS32_ENTRY.
func hasPVHNote(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz > 1<<20 {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			continue
		}
		for len(b) >= 12 {
			namesz := int(binary.LittleEndian.Uint32(b[0:]))
			descsz := int(binary.LittleEndian.Uint32(b[4:]))
			typ := binary.LittleEndian.Uint32(b[8:])
			nameEnd := 12 + align4(namesz)
			if namesz > len(b) || descsz > len(b) || nameEnd+align4(descsz) > len(b) {
				break
			}
			if typ == xenPVHNote && string(bytes.TrimRight(b[12:12+namesz], "\x00")) == "Xen" {
				return true
			}
			b = b[nameEnd+align4(descsz):]
		}
	}
	return false
}

// align4 rounds n up to a multiple of 4.
func align4(n int) int { return (n + 3) &^ 3 }

// bzImageRelease returns the release ("6.1.0-56-amd64") from a bzImage's
// setup header, or "" when b is not a bzImage.
func bzImageRelease(b []byte) string {
	if len(b) < 0x210 || string(b[0x202:0x206]) != "HdrS" {
		return ""
	}
	off := int(binary.LittleEndian.Uint16(b[0x20e:])) + 0x200
	if off >= len(b) {
		return ""
	}
	s := b[off:min(off+256, len(b))]
	if i := bytes.IndexAny(s, " \x00"); i >= 0 {
		s = s[:i]
	}
	return string(s)
}

// isBzImage reports whether b starts with a Linux x86 boot setup header.
func isBzImage(b []byte) bool { return bzImageRelease(b) != "" }

// vmlinuxRelease returns the release from the "Linux version X " banner in
// an uncompressed kernel, or "" when none is found.
func vmlinuxRelease(b []byte) string {
	const banner = "Linux version "
	for rest := b; ; {
		i := bytes.Index(rest, []byte(banner))
		if i < 0 {
			return ""
		}
		rest = rest[i+len(banner):]
		end := bytes.IndexAny(rest[:min(len(rest), 128)], " \x00")
		// The banner is followed by "(builder@host)"; skip format strings.
		if end > 0 && bytes.HasPrefix(rest[end:], []byte(" (")) && !bytes.Contains(rest[:end], []byte("%")) {
			return string(rest[:end])
		}
	}
}
