package echo

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ServerName is the argv[0] basename under which the multi-call binary runs ServerMain.
const ServerName = "hostlab-echo-server"

// serverConfig is the parsed server command line.
type serverConfig struct {
	listen  string
	mode    string
	sigterm string
	pidDir  string
	child   bool
}

func parseServer(args []string, stderr io.Writer) (serverConfig, error) {
	var c serverConfig
	fs := flag.NewFlagSet(ServerName, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", ":9998", "address to listen on")
	fs.StringVar(&c.mode, "mode", "fork", "fork (re-exec a child per connection) or single (one process)")
	fs.StringVar(&c.sigterm, "sigterm", "default", "on SIGTERM: close (FIN every connection, exit 0), ignore, or default (die)")
	fs.StringVar(&c.pidDir, "pid-dir", "", "if set, write DIR/<peerport>.pid with the pid serving each connection (before its accept event; removed when it ends)")
	fs.BoolVar(&c.child, "child", false, "internal: serve the connection on fd 3")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() != 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.mode != "fork" && c.mode != "single" {
		return c, fmt.Errorf("--mode %q: want fork or single", c.mode)
	}
	switch c.sigterm {
	case "close", "ignore", "default":
	default:
		return c, fmt.Errorf("--sigterm %q: want close, ignore or default", c.sigterm)
	}
	return c, nil
}

// ServerMain runs the echo server with the given arguments (without argv[0])
// and returns its exit code.
func ServerMain(args []string) int {
	c, err := parseServer(args, os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", ServerName, err)
		}
		return ExitUsage
	}
	if c.child {
		return childMain(c)
	}
	w := NewWriter(os.Stdout, "server")
	w.Emit(Event{Ev: "start", Args: append([]string{ServerName}, args...)})
	term := handleSigterm(c.sigterm)
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		w.EmitErr("listen", 0, err)
		w.Emit(Event{Ev: "exit", Code: intp(ExitOther)})
		return ExitOther
	}
	w.Emit(Event{Ev: "listen", Local: ln.Addr().String(), Mode: c.mode})
	s := &server{cfg: c, w: w, ln: ln, conns: map[net.Conn]bool{}, children: map[int]*os.Process{}}
	if term == nil {
		s.acceptLoop()
		w.Emit(Event{Ev: "exit", Code: intp(ExitOther), Outcome: "listener closed"})
		return ExitOther
	}
	go s.acceptLoop()
	<-term
	return s.shutdown()
}

// handleSigterm applies the SIGTERM disposition and returns a channel that
// receives SIGTERM when the action is "close".
func handleSigterm(action string) chan os.Signal {
	switch action {
	case "ignore":
		signal.Ignore(syscall.SIGTERM)
	case "close":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		return ch
	}
	return nil
}

// server is the listening parent (fork mode) or the only process (single mode).
type server struct {
	cfg      serverConfig
	w        *Writer
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	closing  bool
	conns    map[net.Conn]bool
	children map[int]*os.Process
}

func (s *server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *server) acceptLoop() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.w.EmitErr("accept", 0, err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if s.cfg.mode == "single" {
			s.serveHere(conn)
		} else {
			s.forkChild(conn)
		}
	}
}

// serveHere serves conn on a goroutine of this process (single mode).
func (s *server) serveHere(conn net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	s.conns[conn] = true
	s.wg.Add(1)
	s.mu.Unlock()
	pid := os.Getpid()
	pidFile := s.writePidFile(conn.RemoteAddr(), pid)
	s.w.Emit(Event{Ev: "accept", ChildPID: pid, Peer: conn.RemoteAddr().String(), Local: conn.LocalAddr().String()})
	go func() {
		defer s.wg.Done()
		echoConn(s.w, conn, s.isClosing)
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		removeFile(pidFile)
	}()
}

// shutdown handles SIGTERM with --sigterm close: stop listening, close every
// connection (directly, or by forwarding SIGTERM to the children), and exit 0.
func (s *server) shutdown() int {
	s.w.Emit(Event{Ev: "sigterm", Action: "close"})
	s.mu.Lock()
	s.closing = true
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	for _, p := range s.children {
		_ = p.Signal(syscall.SIGTERM)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.w.Emit(Event{Ev: "error", Op: "shutdown", Err: "connections still open after 10s"})
	}
	s.w.Emit(Event{Ev: "exit", Code: intp(0), Outcome: "sigterm"})
	return 0
}

// writePidFile records pid as the process serving the connection from peer,
// returning the file's path ("" when --pid-dir is unset or on error).
func (s *server) writePidFile(peer net.Addr, pid int) string {
	if s.cfg.pidDir == "" {
		return ""
	}
	ta, ok := peer.(*net.TCPAddr)
	if !ok {
		return ""
	}
	if err := os.MkdirAll(s.cfg.pidDir, 0o755); err != nil {
		s.w.EmitErr("pid_file", 0, fmt.Errorf("create pid dir: %w", err))
		return ""
	}
	path := filepath.Join(s.cfg.pidDir, strconv.Itoa(ta.Port)+".pid")
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		s.w.EmitErr("pid_file", 0, fmt.Errorf("write pid file: %w", err))
		return ""
	}
	return path
}

func removeFile(path string) {
	if path != "" {
		_ = os.Remove(path)
	}
}

// echoConn echoes conn until EOF or an error, logging echo_eof or error, then closes it.
func echoConn(w *Writer, conn net.Conn, closing func() bool) {
	peer := conn.RemoteAddr().String()
	buf := make([]byte, 32*1024)
	total := 0
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				if !closing() {
					w.Emit(Event{Ev: "error", Op: "write", Peer: peer, Errno: Classify(werr), Err: werr.Error()})
				}
				break
			}
			total += n
		}
		if errors.Is(err, io.EOF) {
			w.Emit(Event{Ev: "echo_eof", Peer: peer, Bytes: total})
			break
		}
		if err != nil {
			if !closing() {
				w.Emit(Event{Ev: "error", Op: "read", Peer: peer, Errno: Classify(err), Err: err.Error()})
			}
			break
		}
	}
	_ = conn.Close()
	w.Emit(Event{Ev: "close", Peer: peer, Bytes: total})
}
