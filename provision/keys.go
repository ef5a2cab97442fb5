package provision

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// KeyPair is an ed25519 SSH key: the private key in OpenSSH PEM form and a
// signer for it.
type KeyPair struct {
	// PrivatePEM is the private key in OpenSSH PEM format (unencrypted).
	PrivatePEM []byte
	// Signer signs with the private key.
	Signer ssh.Signer
}

// GenerateKey returns a new random ed25519 key pair.
func GenerateKey() (KeyPair, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "hostlab")
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal private key: %w", err)
	}
	return ParseKeyPair(pem.EncodeToMemory(block))
}

// ParseKeyPair parses an unencrypted private key in PEM form.
func ParseKeyPair(privatePEM []byte) (KeyPair, error) {
	signer, err := ssh.ParsePrivateKey(privatePEM)
	if err != nil {
		return KeyPair{}, fmt.Errorf("parse private key: %w", err)
	}
	return KeyPair{PrivatePEM: privatePEM, Signer: signer}, nil
}

// LoadKeyPair reads a private key file written by Save.
func LoadKeyPair(path string) (KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return KeyPair{}, fmt.Errorf("load key: %w", err)
	}
	k, err := ParseKeyPair(b)
	if err != nil {
		return KeyPair{}, fmt.Errorf("load key %s: %w", path, err)
	}
	return k, nil
}

// String names k by its public key's fingerprint and never shows the
// private half, so that a KeyPair printed or logged by mistake leaks
// nothing.
func (k KeyPair) String() string {
	if k.Signer == nil {
		return "ssh key (unset)"
	}
	return "ssh key " + ssh.FingerprintSHA256(k.PublicKey())
}

// GoString is String, for %#v.
func (k KeyPair) GoString() string { return k.String() }

// LogValue is String, for log/slog.
func (k KeyPair) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON encodes String, never the private key (slog's JSON handler
// marshals a KeyPair inside a struct with encoding/json).
func (k KeyPair) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// PublicKey returns the public half of k.
func (k KeyPair) PublicKey() ssh.PublicKey { return k.Signer.PublicKey() }

// AuthorizedKey returns the public key as an authorized_keys line, ending in
// a newline.
func (k KeyPair) AuthorizedKey() []byte { return ssh.MarshalAuthorizedKey(k.PublicKey()) }

// Save writes the private key to path (0600) and the public key to
// path+".pub" (0644), each atomically.
func (k KeyPair) Save(path string) error {
	if err := writeFileAtomic(path, k.PrivatePEM, 0o600); err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	if err := writeFileAtomic(path+".pub", k.AuthorizedKey(), 0o644); err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to path, sets perm
// and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
