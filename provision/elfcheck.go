package provision

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
)

// checkStaticELF verifies that path is a statically linked x86-64 ELF
// executable: the guest has no dynamic loader and no libc. what names the
// file in errors ("guest binary", "busybox").
func checkStaticELF(path, what string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s %s: not an ELF executable: %w", what, path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		return fmt.Errorf("%s %s: built for %s/%s, want x86-64 (GOARCH=amd64)", what, path, f.Class, f.Machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s %s: ELF type %s is not an executable", what, path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s %s: %w", what, path, ErrDynamicGuestBinary)
		}
	}
	return nil
}

// checkStaticBusybox verifies that path is a static x86-64 busybox.
func checkStaticBusybox(path string) error {
	err := checkStaticELF(path, "busybox")
	if errors.Is(err, ErrDynamicGuestBinary) {
		return fmt.Errorf("busybox %s is dynamically linked: install busybox-static", path)
	}
	return err
}

// CheckGuestExecutable verifies that path can run in a guest as it is: a
// regular file that is a static x86-64 ELF executable or a script starting
// with "#!" (the guest has busybox's sh, no libc and no dynamic loader).
func CheckGuestExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	f.Close()
	switch {
	case n >= 2 && string(head[:2]) == "#!":
		return nil
	case n == 4 && string(head) == elf.ELFMAG:
		return checkStaticELF(path, "program")
	}
	return fmt.Errorf("%s is neither an ELF executable nor a #! script", path)
}
