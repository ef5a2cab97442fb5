package echo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// ClientName is the argv[0] basename under which the multi-call binary runs ClientMain.
const ClientName = "hostlab-echo-client"

// clientConfig is the parsed client command line.
type clientConfig struct {
	connect       string
	interval      time.Duration
	count         int
	idle          bool
	discipline    string
	keepalive     *Keepalive
	userTimeout   time.Duration
	readTimeout   time.Duration
	exitOnTimeout bool
	nodelay       bool
	sample        time.Duration
	maxTime       time.Duration
	twice         bool
	gap           time.Duration
	flood         int
}

func parseClient(args []string, stderr io.Writer) (clientConfig, error) {
	var c clientConfig
	var ka string
	fs := flag.NewFlagSet(ClientName, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.connect, "connect", "", "server HOST:PORT (required)")
	fs.DurationVar(&c.interval, "interval", time.Second, "pause between lines")
	fs.IntVar(&c.count, "count", 0, "lines to send; 0 = forever")
	fs.BoolVar(&c.idle, "idle", false, "send nothing; only wait in read")
	fs.StringVar(&c.discipline, "read", "blocking", "blocking (str_cli: write, then block in read) or event (a reader always waiting)")
	fs.StringVar(&ka, "keepalive", "off", "off, or IDLE,INTVL,CNT (e.g. 5s,2s,3) for SO_KEEPALIVE and TCP_KEEP*")
	fs.DurationVar(&c.userTimeout, "user-timeout", 0, "TCP_USER_TIMEOUT; 0 = kernel default")
	fs.DurationVar(&c.readTimeout, "read-timeout", 0, "deadline for each read; 0 = none")
	fs.BoolVar(&c.exitOnTimeout, "exit-on-timeout", false, "exit (code 17) at the first read timeout instead of reading on")
	fs.BoolVar(&c.nodelay, "nodelay", false, "set TCP_NODELAY (off by default, unlike Go's default)")
	fs.DurationVar(&c.sample, "sample", 100*time.Millisecond, "TCP_INFO sampling interval; 0 = only on change")
	fs.DurationVar(&c.maxTime, "max-time", 0, "give up after this long, still connected (exit 0, outcome max_time); 0 = never")
	fs.BoolVar(&c.twice, "twice", false, "write each line in two writes, --gap apart, with no read between (UNP 5.13)")
	fs.DurationVar(&c.gap, "gap", time.Second, "pause between the two writes of --twice")
	fs.IntVar(&c.flood, "flood", 0, "write blocks of this many bytes, one per --interval, without waiting for the echo (drained between blocks); 0 = str_cli")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() != 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.connect == "" {
		return c, errors.New("--connect HOST:PORT is required")
	}
	if c.discipline != "blocking" && c.discipline != "event" {
		return c, fmt.Errorf("--read %q: want blocking or event", c.discipline)
	}
	if c.flood > 0 && (c.idle || c.twice) {
		return c, errors.New("--flood writes by itself: not with --idle or --twice")
	}
	if c.count < 0 || c.interval < 0 || c.sample < 0 || c.userTimeout < 0 || c.readTimeout < 0 || c.maxTime < 0 || c.flood < 0 {
		return c, errors.New("counts and durations must not be negative")
	}
	var err error
	if c.keepalive, err = ParseKeepalive(ka); err != nil {
		return c, err
	}
	return c, nil
}

// ClientMain runs the echo client with the given arguments (without argv[0])
// and returns its exit code (see the package doc's table).
func ClientMain(args []string) int {
	cfg, err := parseClient(args, os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", ClientName, err)
		}
		return ExitUsage
	}
	w := NewWriter(os.Stdout, "client")
	w.Emit(Event{Ev: "start", Args: append([]string{ClientName}, args...)})
	c := newClient(cfg, w)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			c.stop("signal")
		}
	}()
	if cfg.maxTime > 0 {
		t := time.AfterFunc(cfg.maxTime, func() { c.stop("max_time") })
		defer t.Stop()
	}
	return c.run()
}

// client is one connection's worth of client state.
type client struct {
	cfg    clientConfig
	w      *Writer
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	reason  string // why the client was stopped from outside ("max_time", "signal")
	conn    *net.TCPConn
	rc      syscall.RawConn
	sampler sync.WaitGroup
	quit    chan struct{}
}

func newClient(cfg clientConfig, w *Writer) *client {
	ctx, cancel := context.WithCancel(context.Background())
	return &client{cfg: cfg, w: w, ctx: ctx, cancel: cancel, quit: make(chan struct{})}
}

// past is a deadline that has already passed, used to wake blocked calls.
var past = time.Unix(1, 0)

// stop ends the run from outside: blocked reads and writes return at once.
func (c *client) stop(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason != "" {
		return
	}
	c.reason = reason
	c.cancel()
	if c.conn != nil {
		_ = c.conn.SetDeadline(past)
	}
}

func (c *client) stopReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// setReadDeadline arms the per-read timeout, unless the run was stopped.
func (c *client) setReadDeadline() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.reason != "":
		_ = c.conn.SetReadDeadline(past)
	case c.cfg.readTimeout > 0:
		_ = c.conn.SetReadDeadline(time.Now().Add(c.cfg.readTimeout))
	default:
		_ = c.conn.SetReadDeadline(time.Time{})
	}
}

// sleep waits d and reports false if the run was stopped meanwhile.
func (c *client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// dial connects with keepalive and TCP_USER_TIMEOUT set before the SYN, and
// TCP_NODELAY as asked (Go would otherwise turn it on).
func (c *client) dial() error {
	watch := make(chan struct{})
	var watching sync.WaitGroup
	d := net.Dialer{
		KeepAlive: -1, // keep Go's default keepalive off: kernel defaults unless --keepalive
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				if serr = ApplyKeepalive(int(fd), c.cfg.keepalive); serr != nil {
					return
				}
				if c.cfg.userTimeout > 0 {
					serr = ApplyUserTimeout(int(fd), c.cfg.userTimeout)
				}
			})
			if err == nil && serr == nil {
				watching.Add(1)
				go c.watchConnect(rc, watch, &watching)
			}
			return errors.Join(err, serr)
		},
	}
	c.w.Emit(Event{Ev: "connecting", Peer: c.cfg.connect})
	nc, err := d.DialContext(c.ctx, "tcp", c.cfg.connect)
	close(watch)
	watching.Wait()
	if err != nil {
		return err
	}
	conn := nc.(*net.TCPConn)
	rc, err := conn.SyscallConn()
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("raw conn: %w", err)
	}
	if err := conn.SetNoDelay(c.cfg.nodelay); err != nil {
		_ = conn.Close()
		return fmt.Errorf("set nodelay: %w", err)
	}
	c.mu.Lock()
	c.conn, c.rc = conn, rc
	if c.reason != "" {
		_ = conn.SetDeadline(past)
	}
	c.mu.Unlock()
	return nil
}

// connectPoll is how often watchConnect reads TCP_INFO during the connect.
const connectPoll = 10 * time.Millisecond

// watchConnect samples the connecting socket's TCP_INFO every connectPoll
// until the dial returns, logging a tcp_info event (reason "connecting") on
// the first sample after connect() sent the SYN and on every change: state,
// SYN retransmissions, backoff and RTO, and CLOSE when the kernel gave up
// before the dialer closed the socket. Before a change it logs the read
// before it too, with that read's stamps, so the two bracket the change. When the dial returns it also logs
// the last sample read, with the stamps of its reading, if it was not
// logged: the kernel's state at most one poll before it gave up. When the kernel gives the connect up, the last SYN_SENT sample
// and the client's report bracket the instant. rc comes from the dialer's
// Control hook; once the dialer closes a failed socket rc.Control fails
// instead of touching a reused descriptor, which ends the watch.
func (c *client) watchConnect(rc syscall.RawConn, done <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	tick := time.NewTicker(connectPoll)
	defer tick.Stop()
	var last, polled Event // The last sample logged, and the last read.
	for {
		if ti, err := ReadTCPInfo(rc); err == nil {
			e := Event{Ev: "tcp_info", Reason: "connecting", TCPInfo: &ti}
			e.MonoNS, e.RealNS = Now()
			// The socket is CLOSE until connect() sends the SYN.
			switch started := last.TCPInfo != nil; {
			case !started && ti.State == "CLOSE":
			case !started || ti.Changed(*last.TCPInfo):
				// The read before a change brackets it with this one.
				if polled.TCPInfo != nil && polled.MonoNS > last.MonoNS {
					c.w.emitStamped(polled)
				}
				c.w.emitStamped(e)
				last = e
			default:
				polled = e
			}
		}
		select {
		case <-done:
			// The last read before the dial returned, with its own stamps:
			// the kernel's state at most one poll before it gave up.
			if polled.TCPInfo != nil && polled.MonoNS > last.MonoNS {
				c.w.emitStamped(polled)
			}
			return
		case <-tick.C:
		}
	}
}
