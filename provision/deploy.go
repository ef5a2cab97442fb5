package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// GuestBinDir is where hostlab puts the programs it deploys into a guest.
const GuestBinDir = "/opt/hostlab/bin"

// staticFix tells how to build a binary a guest can run.
const staticFix = "build it static: CGO_ENABLED=0 for Go, -static for C"

// File is a local file to deploy into a guest.
type File struct {
	// Local is the file's path on the host.
	Local string
	// Remote is its absolute path in the guest; empty means GuestBinDir/<base name of Local>.
	Remote string
	// Mode holds the permission bits to give it; zero means the local file's.
	Mode os.FileMode
}

// Deployed is a File as Deploy left it in the guest.
type Deployed struct {
	File
	// Changed reports whether Deploy wrote the file or fixed its mode.
	Changed bool
	// SHA256 is the hex sha256 of its content.
	SHA256 string
}

// Deploy uploads each file (checksum-verified, identical files skipped via
// Client.Upload), checking first that each executable is a static x86-64 ELF
// (a guest has no libc and no dynamic loader) unless it is a script (#!).
// All files are checked before any is uploaded; after a failed upload the
// files deployed so far are returned with the error.
func Deploy(ctx context.Context, c *Client, files []File) ([]Deployed, error) {
	checked := make([]Deployed, len(files))
	for i, f := range files {
		d, err := checkDeployFile(f)
		if err != nil {
			return nil, err
		}
		checked[i] = d
	}
	var done []Deployed
	for _, d := range checked {
		changed, err := c.Upload(ctx, d.Local, d.Remote, d.Mode)
		if err != nil {
			return done, fmt.Errorf("deploy: %w", err)
		}
		d.Changed = changed
		done = append(done, d)
	}
	return done, nil
}

// checkDeployFile fills in f's defaults, checks that a guest can run it and
// computes its checksum.
func checkDeployFile(f File) (Deployed, error) {
	fi, err := os.Stat(f.Local)
	if errors.Is(err, fs.ErrNotExist) {
		return Deployed{}, fmt.Errorf("deploy %s: no such file: check the path", f.Local)
	}
	if err != nil {
		return Deployed{}, fmt.Errorf("deploy %s: %w", f.Local, err)
	}
	if !fi.Mode().IsRegular() {
		return Deployed{}, fmt.Errorf("deploy %s: not a regular file", f.Local)
	}
	if f.Remote == "" {
		f.Remote = path.Join(GuestBinDir, filepath.Base(f.Local))
	}
	if !path.IsAbs(f.Remote) {
		return Deployed{}, fmt.Errorf("deploy %s: guest path %q is not absolute", f.Local, f.Remote)
	}
	if f.Mode == 0 {
		f.Mode = fi.Mode()
	}
	f.Mode = f.Mode.Perm()
	if f.Mode&0o111 != 0 {
		if err := checkGuestExecutable(f.Local); err != nil {
			return Deployed{}, err
		}
	}
	sum, err := fileSHA256(f.Local)
	if err != nil {
		return Deployed{}, fmt.Errorf("deploy %s: checksum: %w", f.Local, err)
	}
	return Deployed{File: f, SHA256: sum}, nil
}

// checkGuestExecutable accepts a script (#!) or a static x86-64 ELF.
func checkGuestExecutable(local string) error {
	script, err := isScript(local)
	if err != nil {
		return fmt.Errorf("deploy %s: %w", local, err)
	}
	if script {
		return nil
	}
	err = checkStaticELF(local, "deploy")
	if errors.Is(err, ErrDynamicGuestBinary) {
		return &dynamicBinaryError{path: local}
	}
	return err
}

// isScript reports whether the file starts with "#!".
func isScript(local string) (bool, error) {
	f, err := os.Open(local)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 2)
	if _, err := io.ReadFull(f, head); err != nil {
		return false, nil // shorter than "#!": not a script
	}
	return bytes.Equal(head, []byte("#!")), nil
}

// dynamicBinaryError reports a dynamically linked executable given to Deploy;
// it wraps ErrDynamicGuestBinary.
type dynamicBinaryError struct{ path string }

// Error implements error.
func (e *dynamicBinaryError) Error() string {
	return fmt.Sprintf("deploy %s: dynamically linked, but a guest has no libc or dynamic loader: %s", e.path, staticFix)
}

// Unwrap returns ErrDynamicGuestBinary.
func (e *dynamicBinaryError) Unwrap() error { return ErrDynamicGuestBinary }
