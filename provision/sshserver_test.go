package provision

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// testServer is an in-process SSH server that runs exec and shell requests
// with the host's /bin/sh and serves the sftp subsystem, like a guest.
type testServer struct {
	addr    string
	ln      net.Listener
	config  *ssh.ServerConfig
	mu      sync.Mutex
	resizes []string // "WxH" of window-change requests
}

// startTestServer serves on ln (a new 127.0.0.1 listener when nil) with the
// given host key, accepting only the authorized key.
func startTestServer(t *testing.T, ln net.Listener, hostKey ssh.Signer, authorized ssh.PublicKey) *testServer {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	s := &testServer{addr: ln.Addr().String(), ln: ln}
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "root" && string(key.Marshal()) == string(authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unauthorized")
		},
	}
	s.config.AddHostKey(hostKey)
	go s.serve()
	t.Cleanup(func() { ln.Close() })
	return s
}

// serve accepts connections until the listener is closed.
func (s *testServer) serve() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			_, chans, reqs, err := ssh.NewServerConn(conn, s.config)
			if err != nil {
				conn.Close()
				return
			}
			go ssh.DiscardRequests(reqs)
			for nc := range chans {
				if nc.ChannelType() != "session" {
					nc.Reject(ssh.UnknownChannelType, "sessions only")
					continue
				}
				ch, reqs, err := nc.Accept()
				if err == nil {
					go s.session(ch, reqs)
				}
			}
		}()
	}
}

// session handles the requests of one session channel.
func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	var cmd *exec.Cmd
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			req.Reply(true, nil)
		case "window-change":
			if len(req.Payload) >= 8 {
				s.mu.Lock()
				s.resizes = append(s.resizes, fmt.Sprintf("%dx%d",
					binary.BigEndian.Uint32(req.Payload), binary.BigEndian.Uint32(req.Payload[4:])))
				s.mu.Unlock()
			}
		case "exec", "shell":
			args := []string{"/bin/sh"}
			if req.Type == "exec" {
				var p struct{ Cmd string }
				ssh.Unmarshal(req.Payload, &p)
				args = append(args, "-c", p.Cmd)
			}
			cmd = exec.Command(args[0], args[1:]...)
			cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
			stdin, _ := cmd.StdinPipe()
			if err := cmd.Start(); err != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go func() { io.Copy(stdin, ch); stdin.Close() }()
			go func() {
				cmd.Wait()
				sendExit(ch, cmd.ProcessState.Sys().(syscall.WaitStatus))
				ch.Close()
			}()
		case "signal":
			var p struct{ Signal string }
			ssh.Unmarshal(req.Payload, &p)
			if cmd != nil && cmd.Process != nil {
				cmd.Process.Signal(unix.SignalNum("SIG" + p.Signal))
			}
		case "subsystem":
			var p struct{ Name string }
			ssh.Unmarshal(req.Payload, &p)
			if p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go func() {
				if srv, err := sftp.NewServer(ch); err == nil {
					srv.Serve()
				}
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
				ch.Close()
			}()
		default:
			req.Reply(false, nil)
		}
	}
}

// sendExit reports how a command ended, as an SSH server does.
func sendExit(ch ssh.Channel, ws syscall.WaitStatus) {
	if ws.Signaled() {
		name := strings.TrimPrefix(unix.SignalName(ws.Signal()), "SIG")
		ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Msg, Lang  string
		}{Signal: name}))
		return
	}
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(ws.ExitStatus())}))
}
