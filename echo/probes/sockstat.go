package probes

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// SockstatName is the argv[0] basename under which the multi-call binary runs SockstatMain.
const SockstatName = "hostlab-sockstat"

// procNetTCPFiles are the socket tables hostlab-sockstat reads when
// sock_diag is unavailable; a missing one (no IPv6) is skipped.
var procNetTCPFiles = []string{"/proc/net/tcp", "/proc/net/tcp6"}

// Sources of hostlab-sockstat's samples, named in its "source" line.
const (
	SourceSockDiag = "sock_diag" // a NETLINK_SOCK_DIAG (inet_diag) dump with tcp_info
	SourceProcNet  = "procnet"   // /proc/net/tcp and /proc/net/tcp6
)

// SockRecord is one "sock" or "sock_gone" line of hostlab-sockstat; other
// events ("start", "source", "error", "exit") decode into it with only V,
// Ev and the stamps set.
type SockRecord struct {
	V        int      `json:"v"`                  // schema version, 1
	Ev       string   `json:"ev"`                 // "sock" or "sock_gone"
	MonoNS   int64    `json:"mono_ns"`            // CLOCK_MONOTONIC after the sample
	RealNS   int64    `json:"real_ns"`            // CLOCK_REALTIME after the sample
	Local    string   `json:"local"`              // local address:port
	Peer     string   `json:"peer"`               // remote address:port
	State    string   `json:"state"`              // TCP state name
	TxQueue  uint32   `json:"tx_queue"`           // unacknowledged bytes (LISTEN: backlog limit)
	RxQueue  uint32   `json:"rx_queue"`           // unread bytes (LISTEN: accept queue)
	Timer    string   `json:"timer"`              // on, keepalive, timewait, probe or off
	TimerMS  int64    `json:"timer_ms"`           // time until the timer fires
	Retrnsmt uint32   `json:"retrnsmt"`           // icsk_retransmits
	Probes   uint32   `json:"probes"`             // icsk_probes_out
	Inode    uint64   `json:"inode"`              // socket inode, 0 for TIME_WAIT
	UID      uint32   `json:"uid"`                // owner
	Info     *TCPInfo `json:"tcp_info,omitempty"` // sock_diag: the socket's tcp_info
	Mem      *MemInfo `json:"skmem,omitempty"`    // sock_diag: memory accounting
}

// statusRecord is a start, source, error or exit line.
type statusRecord struct {
	V      int      `json:"v"`
	Ev     string   `json:"ev"`
	MonoNS int64    `json:"mono_ns"`
	RealNS int64    `json:"real_ns"`
	PID    int      `json:"pid,omitempty"`
	Args   []string `json:"args,omitempty"`
	Source string   `json:"source,omitempty"`
	Op     string   `json:"op,omitempty"`
	Err    string   `json:"err,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// sockstatConfig is the parsed hostlab-sockstat command line.
type sockstatConfig struct {
	port     uint16
	interval time.Duration
	duration time.Duration
}

func parseSockstat(args []string, stderr io.Writer) (sockstatConfig, error) {
	var c sockstatConfig
	var port uint
	fs := flag.NewFlagSet(SockstatName, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.UintVar(&port, "port", 0, "match sockets whose local or remote port is this (required)")
	fs.DurationVar(&c.interval, "interval", 100*time.Millisecond, "sampling interval")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long; 0 = until SIGTERM or SIGINT")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() != 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if port == 0 || port > 65535 {
		return c, errors.New("--port N (1-65535) is required")
	}
	if c.interval <= 0 || c.duration < 0 {
		return c, errors.New("--interval must be positive and --duration not negative")
	}
	c.port = uint16(port)
	return c, nil
}

// SockstatMain runs hostlab-sockstat with the given arguments (without
// argv[0]) and returns its exit code: 0 when --duration passed or a SIGTERM
// or SIGINT arrived, 1 when stdout failed, 2 for bad flags.
func SockstatMain(args []string) int {
	cfg, err := parseSockstat(args, os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", SockstatName, err)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	out := &lineWriter{w: os.Stdout}
	out.status(statusRecord{Ev: "start", PID: os.Getpid(), Args: append([]string{SockstatName}, args...)})
	read, src := pickSource(cfg.port, dumpSockDiag, readProcNetTCP)
	out.status(src)
	reason := runSockstat(ctx, cfg, out, read)
	if out.err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", SockstatName, out.err)
		return 1
	}
	out.status(statusRecord{Ev: "exit", Reason: reason})
	return 0
}

// pickSource returns the reader of sock_diag dumps if one dump through diag
// works, else the /proc/net/tcp reader, with the "source" line saying which
// (and, for procnet, why).
func pickSource(port uint16, diag func(uint16) ([]Socket, error), procnet func() ([]Socket, error)) (func() ([]Socket, error), statusRecord) {
	if _, err := diag(port); err != nil {
		return procnet, statusRecord{Ev: "source", Source: SourceProcNet, Err: err.Error()}
	}
	return func() ([]Socket, error) { return diag(port) }, statusRecord{Ev: "source", Source: SourceSockDiag}
}

// runSockstat samples with read every cfg.interval until ctx is done
// ("signal"), cfg.duration passed ("duration") or out failed ("output").
func runSockstat(ctx context.Context, cfg sockstatConfig, out *lineWriter, read func() ([]Socket, error)) string {
	var deadline <-chan time.Time
	if cfg.duration > 0 {
		t := time.NewTimer(cfg.duration)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(cfg.interval)
	defer tick.Stop()
	s := newSampler(cfg.port)
	var lastErr string
	for {
		socks, err := read()
		real, mono := clockNow()
		switch {
		case err != nil && err.Error() != lastErr:
			out.status(statusRecord{Ev: "error", MonoNS: mono, RealNS: real, Op: "read socket tables", Err: err.Error()})
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
			for _, r := range s.update(socks) {
				r.MonoNS, r.RealNS = mono, real
				out.sock(r)
			}
		}
		if out.err != nil {
			return "output"
		}
		select {
		case <-ctx.Done():
			return "signal"
		case <-deadline:
			return "duration"
		case <-tick.C:
		}
	}
}

// readProcNetTCP reads and parses every table of procNetTCPFiles.
func readProcNetTCP() ([]Socket, error) {
	var all []Socket
	for _, name := range procNetTCPFiles {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		socks, err := ParseProcNetTCP(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, socks...)
	}
	return all, nil
}

// lineWriter writes JSON lines, one write each, and keeps the first error.
type lineWriter struct {
	w   io.Writer
	err error
}

func (lw *lineWriter) sock(r SockRecord) {
	r.V = 1
	lw.write(r)
}

func (lw *lineWriter) status(r statusRecord) {
	r.V = 1
	if r.MonoNS == 0 {
		r.RealNS, r.MonoNS = clockNow()
	}
	lw.write(r)
}

func (lw *lineWriter) write(v any) {
	if lw.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		lw.err = fmt.Errorf("marshal: %w", err)
		return
	}
	if _, err := lw.w.Write(append(b, '\n')); err != nil {
		lw.err = fmt.Errorf("write stdout: %w", err)
	}
}
