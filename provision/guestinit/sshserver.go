package guestinit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// handshakeTimeout bounds the SSH handshake and authentication of a client.
const handshakeTimeout = 30 * time.Second

// SSHServer serves SSH sessions (exec, shell, pty, sftp, signals) as the user
// running it, authenticating clients by public key only.
type SSHServer struct {
	// Logf, if not nil, receives one line per connection and per command.
	Logf func(format string, args ...any)
	// Shell is the shell used for shell and exec requests; /bin/sh by default.
	Shell string

	cfg        *ssh.ServerConfig
	authorized [][]byte
	procs      *ProcTable
}

// NewSSHServer returns a server presenting hostKey that accepts only the
// authorized keys and starts session processes through procs.
func NewSSHServer(hostKey ssh.Signer, authorized []ssh.PublicKey, procs *ProcTable) *SSHServer {
	s := &SSHServer{Shell: "/bin/sh", procs: procs}
	for _, k := range authorized {
		s.authorized = append(s.authorized, k.Marshal())
	}
	s.cfg = &ssh.ServerConfig{
		PublicKeyCallback: s.checkKey,
		ServerVersion:     "SSH-2.0-hostlab-init",
	}
	s.cfg.AddHostKey(hostKey)
	return s
}

// checkKey accepts key when it equals an authorized key, comparing every
// authorized key in constant time.
func (s *SSHServer) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	m := key.Marshal()
	found := 0
	for _, a := range s.authorized {
		found |= subtle.ConstantTimeCompare(a, m)
	}
	if found == 1 {
		return &ssh.Permissions{}, nil
	}
	return nil, fmt.Errorf("public key %s of %s@%s is not authorized", ssh.FingerprintSHA256(key), meta.User(), meta.RemoteAddr())
}

// Serve accepts connections on ln until ctx is done, then closes ln and every
// open connection, waits for their handlers and returns nil. Any other accept
// error is returned.
func (s *SSHServer) Serve(ctx context.Context, ln net.Listener) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			_ = c.Close()
		}
	})
	defer stop()
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("ssh accept on %s: %w", ln.Addr(), err)
		}
		mu.Lock()
		conns[nc] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, nc)
				mu.Unlock()
				_ = nc.Close()
			}()
			s.guard("ssh connection", func() { s.serveConn(nc) })
		}()
	}
}

// guard runs fn, logging instead of crashing on a panic: PID 1 must not die.
func (s *SSHServer) guard(what string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			s.logf("panic in %s: %v\n%s", what, r, debug.Stack())
		}
	}()
	fn()
}

func (s *SSHServer) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func (s *SSHServer) serveConn(nc net.Conn) {
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.cfg)
	if err != nil {
		s.logf("ssh: handshake with %s failed: %v", nc.RemoteAddr(), err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	defer sc.Close()
	s.logf("ssh: %s@%s connected", sc.User(), sc.RemoteAddr())
	go s.guard("ssh global requests", func() { handleGlobal(reqs) })
	var wg sync.WaitGroup
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.guard("ssh session", func() { s.serveSession(sc, nch) })
		}()
	}
	wg.Wait()
	s.logf("ssh: %s@%s disconnected", sc.User(), sc.RemoteAddr())
}

// handleGlobal answers keepalives and refuses other global requests.
func handleGlobal(reqs <-chan *ssh.Request) {
	for r := range reqs {
		if r.WantReply {
			_ = r.Reply(r.Type == "keepalive@openssh.com", nil)
		}
	}
}

// ParseAuthorizedKeys parses the contents of an authorized_keys file, skipping
// blank lines and comments.
func ParseAuthorizedKeys(data []byte) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("authorized_keys line %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read authorized_keys: %w", err)
	}
	return keys, nil
}

// LoadSSHKeys reads the host private key and the authorized_keys file.
func LoadSSHKeys(hostKeyPath, authorizedPath string) (ssh.Signer, []ssh.PublicKey, error) {
	pem, err := os.ReadFile(hostKeyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read ssh host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, nil, fmt.Errorf("parse ssh host key %s: %w", hostKeyPath, err)
	}
	data, err := os.ReadFile(authorizedPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read authorized keys: %w", err)
	}
	keys, err := ParseAuthorizedKeys(data)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", authorizedPath, err)
	}
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("no keys in %s", authorizedPath)
	}
	return signer, keys, nil
}
