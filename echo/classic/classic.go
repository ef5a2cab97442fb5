package classic

import (
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// sources holds the C files and their shared event header; they live in
// csrc/ because the go tool refuses .c files in a package that does not use cgo.
//
//go:embed csrc/echo_server.c csrc/echo_client.c csrc/hostlab_event.h
var sources embed.FS

// Binary names written by Build into its output directory.
const (
	ServerBinary = "echo_server"
	ClientBinary = "echo_client"
)

// Build compiles the pair as static binaries with cc ("cc" when empty) into
// outDir and returns the paths of the server and the client.
func Build(ctx context.Context, cc, outDir string) (server, client string, err error) {
	if cc == "" {
		cc = "cc"
	}
	src, err := os.MkdirTemp("", "hostlab-classic-src-")
	if err != nil {
		return "", "", fmt.Errorf("create source dir: %w", err)
	}
	defer os.RemoveAll(src)
	for _, name := range []string{"echo_server.c", "echo_client.c", "hostlab_event.h"} {
		b, err := sources.ReadFile("csrc/" + name)
		if err != nil {
			return "", "", fmt.Errorf("read embedded %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			return "", "", fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", "", fmt.Errorf("create output dir: %w", err)
	}
	server = filepath.Join(outDir, ServerBinary)
	client = filepath.Join(outDir, ClientBinary)
	for out, in := range map[string]string{server: "echo_server.c", client: "echo_client.c"} {
		// Compile next to the target, then rename: several runs may build
		// into one cache at once, and one must never deploy another's
		// half-written binary.
		tmp := filepath.Join(src, filepath.Base(out))
		cmd := exec.CommandContext(ctx, cc, "-O2", "-static", "-Wall", "-Werror", "-o", tmp, filepath.Join(src, in))
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("compile %s with %s: %w\n%s", in, cc, err, b)
		}
		if err := moveInto(tmp, out); err != nil {
			return "", "", err
		}
	}
	return server, client, nil
}

// moveInto puts the file at src in place at dst atomically: copied to a
// temporary file in dst's folder, then renamed over dst.
func moveInto(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read built %s: %w", src, err)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("install %s: %w", dst, err)
	}
	if err := f.Chmod(0o755); err != nil {
		f.Close()
		return fmt.Errorf("install %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	return nil
}
