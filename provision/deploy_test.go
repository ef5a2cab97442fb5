package provision

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeploy(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	ctx := context.Background()
	dir, remote := t.TempDir(), t.TempDir()
	script := filepath.Join(dir, "run.sh")
	data := filepath.Join(dir, "data.json")
	os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(data, []byte("{}\n"), 0o644)
	files := []File{
		{Local: staticBinary(t), Remote: filepath.Join(remote, "bin", "static")},
		{Local: script, Remote: filepath.Join(remote, "bin", "run.sh")},
		{Local: data, Remote: filepath.Join(remote, "etc", "data.json"), Mode: 0o600},
	}
	wantMode := []os.FileMode{0o755, 0o755, 0o600}
	for round, wantChanged := range []bool{true, false} {
		got, err := Deploy(ctx, c, files)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(got) != len(files) {
			t.Fatalf("round %d: %d files deployed, want %d", round, len(got), len(files))
		}
		for i, d := range got {
			want, _ := fileSHA256(files[i].Local)
			if d.Changed != wantChanged || d.SHA256 != want || d.Mode != wantMode[i] {
				t.Errorf("round %d: %s: changed %v, sha256 %s, mode %v; want %v, %s, %v",
					round, d.Local, d.Changed, d.SHA256, d.Mode, wantChanged, want, wantMode[i])
			}
			a, _ := os.ReadFile(d.Local)
			b, _ := os.ReadFile(d.Remote)
			fi, err := os.Stat(d.Remote)
			if err != nil || !bytes.Equal(a, b) || fi.Mode().Perm() != wantMode[i] {
				t.Errorf("round %d: %s in the guest: %v, same content %v, mode %v", round, d.Remote, err, bytes.Equal(a, b), fi.Mode())
			}
		}
	}
}

func TestDeployDefaults(t *testing.T) {
	bin := staticBinary(t)
	d, err := checkDeployFile(File{Local: bin})
	if err != nil {
		t.Fatal(err)
	}
	if want := GuestBinDir + "/" + filepath.Base(bin); d.Remote != want || d.Mode != 0o755 {
		t.Errorf("defaults: remote %s, mode %v; want %s, 0755", d.Remote, d.Mode, want)
	}
}

func TestDeployRejects(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	dir, remote := t.TempDir(), t.TempDir()
	good := File{Local: staticBinary(t), Remote: filepath.Join(remote, "good")}
	arm := filepath.Join(dir, "arm")
	b, _ := os.ReadFile(good.Local)
	b[18], b[19] = 183, 0 // e_machine = EM_AARCH64
	os.WriteFile(arm, b, 0o755)
	text := filepath.Join(dir, "text")
	os.WriteFile(text, []byte("echo no shebang\n"), 0o755)
	tests := []struct {
		name    string
		file    File
		dynamic bool
		want    string
	}{
		{"missing", File{Local: filepath.Join(dir, "nope")}, false, "no such file: check the path"},
		{"dynamic", File{Local: "/bin/ls", Remote: filepath.Join(remote, "ls")}, true, "-static for C"},
		{"arch", File{Local: arm, Remote: filepath.Join(remote, "arm")}, false, "EM_AARCH64"},
		{"not elf", File{Local: text, Remote: filepath.Join(remote, "text")}, false, "not an ELF executable"},
		{"relative", File{Local: text, Remote: "bin/text"}, false, "not absolute"},
		{"directory", File{Local: dir}, false, "not a regular file"},
	}
	for _, tt := range tests {
		_, err := Deploy(context.Background(), c, []File{good, tt.file})
		if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrDynamicGuestBinary) != tt.dynamic {
			t.Errorf("%s: error %v; want one containing %q (ErrDynamicGuestBinary: %v)", tt.name, err, tt.want, tt.dynamic)
		}
	}
	if _, err := os.Stat(good.Remote); err == nil {
		t.Error("a file was uploaded although another failed its check")
	}
}

func TestDeployUploadFails(t *testing.T) {
	c := newSSHFixture(t).dial(t)
	bin := staticBinary(t)
	_, err := Deploy(context.Background(), c, []File{{Local: bin, Remote: "/proc/hostlab-test/bin"}})
	if err == nil || !strings.Contains(err.Error(), "deploy: upload "+bin) || !strings.Contains(err.Error(), "create parent dir") {
		t.Errorf("upload into /proc: error %v; want a deploy error naming the failed step", err)
	}
}
