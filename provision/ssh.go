package provision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// GuestUser is the user hostlab logs in as.
const GuestUser = "root"

// dialAttemptTimeout bounds one connection attempt in WaitReady: QEMU's user
// networking accepts the TCP connection at once and may hold it while the
// guest is still booting.
const dialAttemptTimeout = 5 * time.Second

// Client is an SSH connection to a guest.
type Client struct {
	ssh  *ssh.Client
	addr string
}

// Dial connects to addr (host:port) as root, authenticating with signer and
// accepting only hostKey. ctx bounds the TCP connect and the handshake; a
// wrong host key yields ErrHostKeyMismatch.
func Dial(ctx context.Context, addr string, hostKey ssh.PublicKey, signer ssh.Signer) (*Client, error) {
	if hostKey == nil || signer == nil {
		return nil, fmt.Errorf("ssh %s: host key and signer are required", addr)
	}
	fixed := ssh.FixedHostKey(hostKey)
	config := &ssh.ClientConfig{
		User: GuestUser,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			if err := fixed(hostname, remote, key); err != nil {
				return fmt.Errorf("%w: got %s, want %s", ErrHostKeyMismatch,
					ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(hostKey))
			}
			return nil
		},
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", addr, err)
	}
	// When ctx is done, fail the handshake's pending I/O at once. (A
	// deadline copied from ctx could fire before ctx.Err is set.)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, config)
	if !stop() { // ctx ended during the handshake
		conn.Close()
		switch {
		case err == nil:
			c.Close()
			return nil, fmt.Errorf("ssh %s: %w", addr, ctx.Err())
		case errors.Is(err, ErrHostKeyMismatch):
			return nil, fmt.Errorf("ssh %s: %w", addr, err)
		}
		return nil, fmt.Errorf("ssh %s: %w (%v)", addr, ctx.Err(), err)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return &Client{ssh: ssh.NewClient(c, chans, reqs), addr: addr}, nil
}

// WaitReady dials addr until a connection succeeds or ctx is done, backing
// off from 100 ms to 1 s, since a guest takes seconds to boot. A host key
// mismatch is returned at once. progress, if not nil, hears about the first
// failure and then every few seconds.
func WaitReady(ctx context.Context, addr string, hostKey ssh.PublicKey, signer ssh.Signer, progress func(string)) (*Client, error) {
	if progress == nil {
		progress = func(string) {}
	}
	start := time.Now()
	var lastReport time.Time
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, dialAttemptTimeout)
		c, err := Dial(actx, addr, hostKey, signer)
		cancel()
		if err == nil {
			if attempt > 1 {
				progress(fmt.Sprintf("ssh %s ready after %s", addr, time.Since(start).Round(time.Millisecond)))
			}
			return c, nil
		}
		if errors.Is(err, ErrHostKeyMismatch) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait for ssh %s after %d attempts: %w (last error: %v)", addr, attempt, ctx.Err(), err)
		}
		if time.Since(lastReport) >= 5*time.Second {
			progress(fmt.Sprintf("waiting for ssh %s: %v", addr, err))
			lastReport = time.Now()
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for ssh %s after %d attempts: %w (last error: %v)", addr, attempt, ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
	}
}

// Addr returns the address the client is connected to.
func (c *Client) Addr() string { return c.addr }

// SSH returns the underlying x/crypto/ssh client, e.g. for port forwarding.
func (c *Client) SSH() *ssh.Client { return c.ssh }

// Close closes the connection.
func (c *Client) Close() error { return c.ssh.Close() }
