package provision

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestKeyPairSaveLoad(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if k.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type %s, want ed25519", k.PublicKey().Type())
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := k.Save(path); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{path: 0o600, path + ".pub": 0o644} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", p, fi.Mode(), err, mode)
		}
	}
	k2, err := LoadKeyPair(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k2.PublicKey().Marshal(), k.PublicKey().Marshal()) {
		t.Error("loaded key differs")
	}
	pub, _ := os.ReadFile(path + ".pub")
	parsed, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil || !bytes.Equal(parsed.Marshal(), k.PublicKey().Marshal()) {
		t.Errorf("public key file: %v", err)
	}
	if _, err := LoadKeyPair(path + ".pub"); err == nil {
		t.Error("loading a public key as private key succeeded")
	}
}

func TestWriteGuestInitrd(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.cpio")
	var b bytes.Buffer
	sampleArchive().writeTo(&b)
	b.Write([]byte{0, 0}) // a base not ending 4-aligned
	os.WriteFile(base, b.Bytes(), 0o644)

	host, _ := GenerateKey()
	user1, _ := GenerateKey()
	user2, _ := GenerateKey()
	out := filepath.Join(dir, "guest.cpio")
	err := WriteGuestInitrd(context.Background(), base, out, host, []ssh.PublicKey{user1.PublicKey(), user2.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want mode 0600 (it holds a private key)", out, fi.Mode(), err)
	}
	data, _ := os.ReadFile(out)
	if !bytes.HasPrefix(data, b.Bytes()) {
		t.Error("output does not start with the base initrd")
	}
	archives, err := readNewc(data)
	if err != nil || len(archives) != 2 {
		t.Fatalf("readNewc: %d archives, %v", len(archives), err)
	}
	files := map[string]cpioFile{}
	for _, f := range archives[1] {
		files[f.name] = f
	}
	key := files["etc/hostlab/ssh_host_ed25519_key"]
	if key.mode != 0o100600 || !bytes.Equal(key.data, host.PrivatePEM) {
		t.Errorf("host key entry: mode %o", key.mode)
	}
	auth := files["etc/hostlab/authorized_keys"]
	if want := append(user1.AuthorizedKey(), user2.AuthorizedKey()...); auth.mode != 0o100644 || !bytes.Equal(auth.data, want) {
		t.Errorf("authorized_keys entry: mode %o, data %q", auth.mode, auth.data)
	}
}
