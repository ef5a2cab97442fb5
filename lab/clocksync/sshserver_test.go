package clocksync

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/hostlab/hostlab/echo/probes"
	"golang.org/x/crypto/ssh"
)

// guestFunc serves one exec request on ch, as the guest's shell would run
// cmd, and returns its exit status.
type guestFunc func(cmd string, ch ssh.Channel) uint32

// clockGuest runs hostlab-clock in-process over the channel; other commands
// are not found, as in a guest's busybox sh.
func clockGuest(cmd string, ch ssh.Channel) uint32 {
	if cmd != probes.ClockName {
		fmt.Fprintf(ch.Stderr(), "sh: %s: not found\n", cmd)
		return 127
	}
	if err := probes.ServeClock(ch, ch); err != nil {
		return 1
	}
	return 0
}

// startTestServer serves SSH on a new 127.0.0.1 listener with the given host
// key, accepting only root with the authorized key, and runs every exec
// request with guest. It returns the address.
func startTestServer(t *testing.T, hostKey ssh.Signer, authorized ssh.PublicKey, guest guestFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "root" && string(key.Marshal()) == string(authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unauthorized")
		},
	}
	config.AddHostKey(hostKey)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveConn(conn, config, guest)
		}
	}()
	return ln.Addr().String()
}

// serveConn runs one SSH connection's session channels.
func serveConn(conn net.Conn, config *ssh.ServerConfig, guest guestFunc) {
	sc, chans, reqs, err := ssh.NewServerConn(conn, config)
	if err != nil {
		conn.Close()
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go serveSession(ch, reqs, guest)
	}
}

// serveSession runs the first exec request of a session and reports its
// exit status; every other request is refused.
func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, guest guestFunc) {
	started := false
	for req := range reqs {
		if req.Type != "exec" || started {
			req.Reply(false, nil)
			continue
		}
		var p struct{ Cmd string }
		if ssh.Unmarshal(req.Payload, &p) != nil {
			req.Reply(false, nil)
			continue
		}
		started = true
		req.Reply(true, nil)
		go func() {
			status := guest(p.Cmd, ch)
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			ch.Close()
		}()
	}
}
