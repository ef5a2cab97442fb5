package scenario_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/labtest"
	"github.com/hostlab/hostlab/lab/scenario"
	"github.com/hostlab/hostlab/provision"
)

// TestSecurityOnVMs checks on a real lab what hostlab guarantees: pinned
// host keys, private lab folders, management ports on 127.0.0.1 only,
// guests that reach nothing of the host, a user's client program run only
// in the guest, and no private key in a run's evidence or hostlab's logs.
func TestSecurityOnVMs(t *testing.T) {
	labtest.Require(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewMultiHandler(labtest.Logger(t).Handler(),
		slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	cfg := labtest.Config(t, "t-security")
	cfg.Log = log
	l := labtest.Up(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	t.Run("a wrong host key is refused", func(t *testing.T) {
		signer := clientSigner(t, l)
		other, err := provision.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		client, _ := l.State.Guest(lab.RoleClient)
		server, _ := l.State.Guest(lab.RoleServer)
		for _, c := range []struct {
			what  string
			guest *lab.GuestState
			key   string
		}{
			{"a fresh key for the client", client, authorized(other.PublicKey())},
			{"a fresh key for the server", server, authorized(other.PublicKey())},
			{"the server's key at the client", client, server.HostKey},
			{"the client's key at the server", server, client.HostKey},
		} {
			pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.key))
			if err != nil {
				t.Fatal(err)
			}
			dctx, dcancel := context.WithTimeout(ctx, time.Minute)
			cl, err := provision.Dial(dctx, "127.0.0.1:"+strconv.Itoa(c.guest.MgmtPort), pinned, signer)
			dcancel()
			if err == nil {
				cl.Close()
				t.Errorf("%s: the guest was accepted", c.what)
			} else if !errors.Is(err, provision.ErrHostKeyMismatch) {
				t.Errorf("%s: %v, want ErrHostKeyMismatch", c.what, err)
			}
		}
		// And the pinned key itself is accepted.
		if _, err := run(ctx, l, lab.RoleClient, "true"); err != nil {
			t.Fatalf("with the pinned key: %v", err)
		}
	})

	t.Run("lab folder and keys are private", func(t *testing.T) {
		fi, err := os.Stat(l.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if p := fi.Mode().Perm(); p&0o007&^0o001 != 0 || p&0o070&^0o010 != 0 {
			t.Errorf("lab folder %s is %v: others or the group can list or write it", l.Dir(), p)
		}
		secrets := []string{filepath.Join(l.Dir(), "id_ed25519")}
		for _, g := range l.State.Guests {
			secrets = append(secrets, g.Initrd)
		}
		for _, p := range secrets {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v, %v; want 0600", p, fi.Mode().Perm(), err)
			}
		}
		_ = filepath.WalkDir(l.Dir(), func(p string, d fs.DirEntry, err error) error {
			if fi, ierr := d.Info(); err == nil && ierr == nil && fi.Mode().Perm()&0o002 != 0 {
				t.Errorf("%s is writable by others: %v", p, fi.Mode().Perm())
			}
			return nil
		})
	})

	t.Run("management ports listen on 127.0.0.1 only", func(t *testing.T) {
		for _, g := range l.State.Guests {
			socks := procNetSockets(t, "tcp", g.MgmtPort)
			listening := 0
			for _, s := range socks {
				if s.state != "0A" { // TCP_LISTEN
					continue
				}
				listening++
				if s.addr != "127.0.0.1" {
					t.Errorf("%s: management port %d listens on %s", g.Role, g.MgmtPort, s.addr)
				}
			}
			if listening == 0 {
				t.Errorf("%s: nothing listens on management port %d", g.Role, g.MgmtPort)
			}
			for _, link := range g.Links {
				for _, s := range procNetSockets(t, "udp", link.LocalPort) {
					if s.addr != "127.0.0.1" {
						t.Errorf("%s: lab link port %d bound to %s", g.Role, link.LocalPort, s.addr)
					}
				}
			}
			for _, ip := range hostIPs(t) {
				c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(g.MgmtPort)), 3*time.Second)
				if err == nil {
					c.Close()
					t.Errorf("%s: management port %d answers on %s", g.Role, g.MgmtPort, ip)
				}
			}
		}
	})

	t.Run("guests reach nothing of the host", func(t *testing.T) {
		ln, err := net.Listen("tcp", ":0") // every address of the host
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var mu sync.Mutex
		var accepted []string
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				accepted = append(accepted, c.RemoteAddr().String())
				mu.Unlock()
				c.Close()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		// 10.0.2.2 is the host's loopback through QEMU user networking;
		// then the host's own addresses, with a default route through the
		// management NIC and through the lab link, as a guest's root
		// could set up.
		type try struct{ route, target string }
		tries := []try{{"", "10.0.2.2"}}
		for _, ip := range hostIPs(t) {
			tries = append(tries, try{"", ip}, try{ip + "/32 via 10.0.2.2 dev eth1", ip}, try{ip + "/32 dev eth0", ip})
		}
		for _, tr := range tries {
			connect := fmt.Sprintf("if echo hostlab-probe | nc -w 3 %s %d; then echo CONNECTED; fi", tr.target, port)
			if tr.route != "" {
				connect = fmt.Sprintf("ip route add %s && { %s; ip route del %s; }", tr.route, connect, tr.route)
			}
			out, err := run(ctx, l, lab.RoleClient, connect)
			if err != nil {
				t.Errorf("%s: %v", connect, err)
			}
			if strings.Contains(out, "CONNECTED") {
				t.Errorf("the client guest reached the host: %s", connect)
			}
		}
		if out, _ := run(ctx, l, lab.RoleClient, "ping -c 1 -W 2 "+hostIPs(t)[0]+" >/dev/null 2>&1 && echo REACHED"); strings.Contains(out, "REACHED") {
			t.Errorf("the client guest pings the host: %s", out)
		}
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if len(accepted) > 0 {
			t.Errorf("the host accepted connections from the guest: %v", accepted)
		}
	})

	t.Run("a user's client runs only in the guest and no key leaks", func(t *testing.T) {
		token := randomToken(t)
		marker := "/tmp/hostlab-marker-" + token
		prog := buildMarkerClient(t, marker)
		s, err := scenario.Lookup("kill-server")
		if err != nil {
			t.Fatal(err)
		}
		res, err := scenario.Execute(ctx, s, scenario.Options{Client: scenario.Client(prog)},
			scenario.Config{Lab: l, Out: t.TempDir(), Log: log})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Complete || !slices.Contains([]string{"EOF", "ECONNRESET"}, res.Observed.Error) {
			t.Errorf("run with the user's client: complete %v, observed %q", res.Complete, res.Observed.Error)
		}
		if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the user's client ran on the host: %s exists (%v)", marker, err)
		}
		if _, err := run(ctx, l, lab.RoleClient, "test -f "+marker); err != nil {
			t.Errorf("the user's client did not run in the guest: %v", err)
		}

		secrets := map[string][]byte{}
		key, err := os.ReadFile(filepath.Join(l.Dir(), "id_ed25519"))
		if err != nil {
			t.Fatal(err)
		}
		secrets["the lab's private key"] = key
		for _, g := range l.State.Guests {
			hk, err := run(ctx, l, g.Role, "cat "+provision.GuestHostKeyPath)
			if err != nil {
				t.Fatal(err)
			}
			secrets[g.Role+"'s private host key"] = []byte(hk)
		}
		files := []string{}
		_ = filepath.WalkDir(res.RunDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		for _, g := range l.State.Guests {
			files = append(files, g.Console)
		}
		for _, want := range []string{"result.json", "timeline.jsonl", "client.console.log", "server.console.log"} {
			if !slices.Contains(files, filepath.Join(res.RunDir, want)) {
				t.Errorf("run folder lacks %s", want)
			}
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Errorf("read %s: %v", f, err)
				continue
			}
			for what, secret := range secrets {
				if leaks(b, secret) {
					t.Errorf("%s appears in %s", what, f)
				}
			}
		}
		for what, secret := range secrets {
			if leaks(logs.Bytes(), secret) {
				t.Errorf("%s appears in hostlab's log", what)
			}
		}
		t.Logf("checked %d files and %d bytes of log for %d private keys", len(files), len(logs.Bytes()), len(secrets))
	})
}

// run executes cmd in a guest and returns its stdout; a non-zero exit is
// an error.
func run(ctx context.Context, l *lab.Lab, role, cmd string) (string, error) {
	c, err := l.Dial(ctx, role)
	if err != nil {
		return "", err
	}
	defer c.Close()
	out, err := c.Output(ctx, cmd)
	return string(out), err
}

// clientSigner loads the lab's client key.
func clientSigner(t *testing.T, l *lab.Lab) ssh.Signer {
	t.Helper()
	k, err := provision.LoadKeyPair(filepath.Join(l.Dir(), "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	return k.Signer
}

// authorized renders a public key as lab.json stores host keys.
func authorized(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// netSocket is one line of /proc/net/{tcp,udp}{,6}.
type netSocket struct{ addr, state string }

// procNetSockets lists the host's sockets bound to port, IPv4 and IPv6.
func procNetSockets(t *testing.T, proto string, port int) []netSocket {
	t.Helper()
	var out []netSocket
	for _, name := range []string{proto, proto + "6"} {
		b, err := os.ReadFile("/proc/net/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 {
				continue
			}
			hexAddr, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err != nil || int(p) != port {
				continue
			}
			out = append(out, netSocket{addr: procAddr(hexAddr), state: f[3]})
		}
	}
	return out
}

// procAddr decodes an address of /proc/net (little-endian 32-bit words).
func procAddr(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil || len(b)%4 != 0 {
		return h
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b).String()
}

// hostIPs lists the host's own non-loopback IPv4 addresses (127.0.0.1 when
// it has none, which QEMU's 10.0.2.2 maps to anyway).
func hostIPs(t *testing.T) []string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			ips = append(ips, n.IP.String())
		}
	}
	if len(ips) == 0 {
		ips = []string{"127.0.0.1"}
	}
	return ips
}

// buildMarkerClient builds a static client program that leaves marker
// wherever it runs, then becomes the Go echo client (which only exists in
// a guest).
func buildMarkerClient(t *testing.T, marker string) string {
	t.Helper()
	src := t.TempDir()
	main := fmt.Sprintf(`package main

import (
	"os"
	"syscall"
)

func main() {
	_ = os.WriteFile(%q, []byte("ran\n"), 0o644)
	err := syscall.Exec("/bin/hostlab-echo-client", append([]string{"hostlab-echo-client"}, os.Args[1:]...), os.Environ())
	println("exec hostlab-echo-client:", err.Error())
	os.Exit(1)
}
`, marker)
	for name, text := range map[string]string{"go.mod": "module marker\n\ngo 1.22\n", "main.go": main} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "marker-client")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the marker client: %v\n%s", err, b)
	}
	return out
}

// randomToken returns a fresh hex token.
func randomToken(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// leaks reports whether any line of a PEM secret (its base64 body) appears
// in b.
func leaks(b, secret []byte) bool {
	for _, line := range bytes.Split(secret, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) >= 16 && !bytes.HasPrefix(line, []byte("-----")) && bytes.Contains(b, line) {
			return true
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Bytes returns a copy of what was written.
func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
