package provision

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestWrongHostKeyRefusedBeforeAuth dials an in-process SSH server whose
// host key is not the pinned one: the client must refuse it with
// ErrHostKeyMismatch, naming both fingerprints, before it offers its own
// key — the server must see no authentication attempt at all.
func TestWrongHostKeyRefusedBeforeAuth(t *testing.T) {
	host, _ := GenerateKey()
	pinned, _ := GenerateKey()
	user, _ := GenerateKey()
	var attempts atomic.Int32
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			attempts.Add(1)
			return nil, nil
		},
		AuthLogCallback: func(_ ssh.ConnMetadata, method string, _ error) {
			if method != "none" {
				attempts.Add(1)
			}
		},
	}
	cfg.AddHostKey(host.Signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		_, _, _, err = ssh.NewServerConn(conn, cfg)
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, ln.Addr().String(), pinned.PublicKey(), user.Signer)
	if err == nil {
		c.Close()
		t.Fatal("Dial accepted a host key other than the pinned one")
	}
	if !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("Dial: %v, want ErrHostKeyMismatch", err)
	}
	for _, fp := range []string{ssh.FingerprintSHA256(host.PublicKey()), ssh.FingerprintSHA256(pinned.PublicKey())} {
		if !strings.Contains(err.Error(), fp) {
			t.Errorf("error %q does not name fingerprint %s", err, fp)
		}
	}
	if serr := <-done; serr == nil {
		t.Error("server completed a handshake with a client that refused its key")
	}
	if n := attempts.Load(); n != 0 {
		t.Errorf("server saw %d authentication attempt(s); the client must stop at the host key", n)
	}
}

// TestKeyPairNeverPrintsPrivateKey prints and logs a key pair every way a
// mistake could: only its public fingerprint may appear.
func TestKeyPairNeverPrintsPrivateKey(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "key", k, "wrapped", struct{ Key KeyPair }{k})
	slog.New(slog.NewTextHandler(&logged, nil)).Info("key", "key", k)
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k),
		fmt.Sprintf("%+v", struct{ Key KeyPair }{k}), logged.String(),
	}
	// The PEM's lines, and the PEM as %v prints bytes and as JSON encodes
	// them.
	secret := append(secretLines(k.PrivatePEM), strings.Trim(fmt.Sprint(k.PrivatePEM[:24]), "[]"),
		base64.StdEncoding.EncodeToString(k.PrivatePEM[:24]))
	for _, out := range outs {
		for _, line := range secret {
			if strings.Contains(out, line) {
				t.Fatalf("private key line %q printed in %q", line, out)
			}
		}
		if !strings.Contains(out, ssh.FingerprintSHA256(k.PublicKey())) {
			t.Errorf("%q does not name the key by its fingerprint", out)
		}
	}
	js, err := json.Marshal(struct{ Key KeyPair }{k})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range secret {
		if strings.Contains(string(js), line) {
			t.Fatalf("private key in JSON: %s", js)
		}
	}
}

// secretLines returns the base64 body lines of a PEM block: any of them
// appearing somewhere means the private key leaked.
func secretLines(pemBytes []byte) []string {
	var out []string
	for _, l := range strings.Split(string(pemBytes), "\n") {
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

func TestCheckGuestExecutable(t *testing.T) {
	dir := t.TempDir()
	script := dir + "/client.sh"
	text := dir + "/notes.txt"
	writeFile(t, script, "#!/bin/sh\nexec hostlab-echo-client \"$@\"\n", 0o755)
	writeFile(t, text, "hello\n", 0o644)
	for _, c := range []struct {
		path string
		ok   bool
		want string
	}{
		{staticBinary(t), true, ""},
		{script, true, ""},
		{"/bin/ls", false, "dynamically linked"},
		{text, false, "neither an ELF executable nor a #! script"},
		{dir, false, "not a regular file"},
		{dir + "/nope", false, "no such file"},
	} {
		err := CheckGuestExecutable(c.path)
		if (err == nil) != c.ok || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckGuestExecutable(%s) = %v; want ok %v, error with %q", c.path, err, c.ok, c.want)
		}
	}
}

// writeFile writes a test file or fails t.
func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}
