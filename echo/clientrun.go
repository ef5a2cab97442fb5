package echo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// errReadTimeout marks a read timeout the client was told to exit on.
var errReadTimeout = errors.New("read timeout")

// terminal is the first thing that ended a run: an error (nil when every line
// came back) on op ("read", "write" or "connect") for line seq.
type terminal struct {
	op  string
	seq int
	err error
}

// run connects, drives the chosen discipline and returns the exit code.
func (c *client) run() int {
	if err := c.dial(); err != nil {
		return c.finish(terminal{op: "connect", err: err})
	}
	so, err := ReadSockopts(c.rc)
	if err != nil {
		c.w.EmitErr("getsockopt", 0, err)
	}
	c.w.Emit(Event{Ev: "connect", Local: c.conn.LocalAddr().String(), Peer: c.conn.RemoteAddr().String(), Sockopts: &so})
	c.emitTCPInfo("event")
	c.sampler.Add(1)
	go c.sample()
	if c.cfg.flood > 0 {
		return c.finish(c.runFlood())
	}
	if c.cfg.discipline == "event" {
		return c.finish(c.runEvent())
	}
	return c.finish(c.runBlocking())
}

// runBlocking is the classic str_cli: write a line, then block in read for
// its echo; nothing is read while the client is between lines.
func (c *client) runBlocking() terminal {
	if c.cfg.idle {
		return c.readLoop(nil)
	}
	buf := make([]byte, 4096)
	for seq := 1; c.cfg.count == 0 || seq <= c.cfg.count; seq++ {
		if seq > 1 && !c.sleep(c.cfg.interval) {
			return terminal{op: "sleep", seq: seq, err: c.ctx.Err()}
		}
		n, err := c.writeLine(seq)
		if err != nil {
			return terminal{op: "write", seq: seq, err: err}
		}
		for got := 0; got < n; {
			m, err := c.read(seq, buf)
			got += m
			if err != nil {
				return terminal{op: "read", seq: seq, err: err}
			}
		}
	}
	return terminal{}
}

// writeLine writes line seq, in two writes --gap apart with --twice, and
// returns the bytes written.
func (c *client) writeLine(seq int) (int, error) {
	line := []byte(fmt.Sprintf("hostlab-echo %d\n", seq))
	parts := [][]byte{line}
	if c.cfg.twice {
		parts = [][]byte{line[:1], line[1:]}
	}
	total := 0
	for i, p := range parts {
		if i > 0 && !c.sleep(c.cfg.gap) {
			return total, c.ctx.Err()
		}
		n, err := c.conn.Write(p)
		total += n
		if n > 0 {
			c.w.Emit(Event{Ev: "write", Seq: seq, Bytes: n})
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// read does one read with the per-read deadline, logging read and
// read_timeout events; timeouts are retried unless --exit-on-timeout.
func (c *client) read(seq int, buf []byte) (int, error) {
	for {
		c.setReadDeadline()
		n, err := c.conn.Read(buf)
		if n > 0 {
			c.w.Emit(Event{Ev: "read", Seq: seq, Bytes: n})
		}
		if err == nil || n > 0 || Classify(err) != "timeout" || c.stopReason() != "" {
			return n, err
		}
		c.w.Emit(Event{Ev: "read_timeout", Op: "read", Seq: seq, Errno: "timeout", Err: err.Error()})
		if c.cfg.exitOnTimeout {
			return 0, fmt.Errorf("%w: %w", errReadTimeout, err)
		}
	}
}

// readLoop reads until EOF or an error; each read's bytes are passed to got.
func (c *client) readLoop(got func(int)) terminal {
	buf := make([]byte, 4096)
	for {
		n, err := c.read(0, buf)
		if n > 0 && got != nil {
			got(n)
		}
		if err != nil {
			return terminal{op: "read", err: err}
		}
	}
}

// runEvent keeps a reader always waiting (the select/poll fix of UNP 5.12)
// beside the writer, and returns whichever of them ended first.
func (c *client) runEvent() terminal {
	first := make(chan terminal, 1)
	done := func(t terminal) {
		select {
		case first <- t:
		default: // the other side ended first
		}
	}
	var mu sync.Mutex
	wrote, read, writerDone := 0, 0, c.cfg.idle
	check := func() {
		if writerDone && !c.cfg.idle && read >= wrote {
			done(terminal{})
		}
	}
	go func() {
		done(c.readLoop(func(n int) {
			mu.Lock()
			defer mu.Unlock()
			read += n
			check()
		}))
	}()
	if !c.cfg.idle {
		go func() {
			for seq := 1; c.cfg.count == 0 || seq <= c.cfg.count; seq++ {
				if seq > 1 && !c.sleep(c.cfg.interval) {
					done(terminal{op: "sleep", seq: seq, err: c.ctx.Err()})
					return
				}
				n, err := c.writeLine(seq)
				mu.Lock()
				wrote += n
				mu.Unlock()
				if err != nil {
					done(terminal{op: "write", seq: seq, err: err})
					return
				}
			}
			mu.Lock()
			defer mu.Unlock()
			writerDone = true
			check()
		}()
	}
	return <-first
}

// finish logs how the run ended, takes a last TCP_INFO sample, closes the
// socket and returns the exit code.
func (c *client) finish(t terminal) int {
	code, outcome := ExitOK, "done"
	switch reason := c.stopReason(); {
	case reason != "":
		outcome = reason
		if c.conn == nil {
			outcome = reason + "_connecting" // never connected: not a success
		}
		if outcome != "max_time" {
			code = ExitOther
		}
	case t.err == nil:
	case errors.Is(t.err, io.EOF):
		c.w.Emit(Event{Ev: "eof", Op: t.op, Seq: t.seq, Errno: "EOF"})
		code, outcome = ExitEOF, "EOF"
	case errors.Is(t.err, errReadTimeout):
		code, outcome = ExitReadTimeout, "read_timeout"
	default:
		c.w.EmitErr(t.op, t.seq, t.err)
		code, outcome = ExitCode(t.err), Classify(t.err)
	}
	if c.conn != nil {
		close(c.quit)
		c.sampler.Wait()
		c.emitTCPInfo("final")
		_ = c.conn.Close()
		c.w.Emit(Event{Ev: "close"})
	}
	c.w.Emit(Event{Ev: "exit", Op: t.op, Code: intp(code), Outcome: outcome})
	return code
}

// emitTCPInfo logs one TCP_INFO sample.
func (c *client) emitTCPInfo(reason string) {
	ti, err := ReadTCPInfo(c.rc)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ClientName, err)
		return
	}
	c.w.Emit(Event{Ev: "tcp_info", Reason: reason, TCPInfo: &ti})
}

// sample polls TCP_INFO until the client quits, logging a sample on every
// change of a tracked field (with the read before it, reason
// before_change, so the two bracket the change) and otherwise every
// --sample.
func (c *client) sample() {
	defer c.sampler.Done()
	poll := 10 * time.Millisecond
	if c.cfg.sample > 0 && c.cfg.sample < poll {
		poll = c.cfg.sample
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	last, err := ReadTCPInfo(c.rc)
	if err != nil {
		return
	}
	lastEmit := time.Now()
	var polled Event // The last read not logged.
	for {
		select {
		case <-c.quit:
			return
		case <-tick.C:
		}
		ti, err := ReadTCPInfo(c.rc)
		if err != nil {
			return
		}
		now := time.Now()
		e := Event{Ev: "tcp_info", Reason: "change", TCPInfo: &ti}
		e.MonoNS, e.RealNS = Now()
		changed := ti.Changed(last)
		if c.cfg.flood > 0 {
			changed = ti.changedFlooding(last)
		}
		switch {
		case changed:
			// The read before the change, with its own stamps, brackets it
			// with this one.
			if polled.TCPInfo != nil {
				polled.Reason = "before_change"
				c.w.emitStamped(polled)
			}
		case c.cfg.sample == 0 || now.Sub(lastEmit) < c.cfg.sample:
			polled = e
			continue
		default:
			e.Reason = "periodic"
		}
		c.w.emitStamped(e)
		last, lastEmit, polled = ti, now, Event{}
	}
}

// runFlood is --flood: a sender that keeps the pipe full instead of str_cli's
// one line at a time. Every --interval it writes a block of --flood bytes
// (blocking while the send buffer is full), having first drained whatever
// echo has arrived without blocking, so the echo never stalls the server.
// Each write and each non-empty drain is an event; the first error ends the
// run. With --count it then reads until every byte has come back.
func (c *client) runFlood() terminal {
	block := make([]byte, c.cfg.flood)
	for i := range block {
		block[i] = "hostlab-flood\n"[i%14]
	}
	buf := make([]byte, 64<<10)
	wrote, read := 0, 0
	for seq := 1; c.cfg.count == 0 || seq <= c.cfg.count; seq++ {
		if seq > 1 && !c.sleep(c.cfg.interval) {
			return terminal{op: "sleep", seq: seq, err: c.ctx.Err()}
		}
		n, err := c.drain(seq, buf)
		read += n
		if err != nil {
			return terminal{op: "read", seq: seq, err: err}
		}
		m, err := c.conn.Write(block)
		wrote += m
		if m > 0 {
			c.w.Emit(Event{Ev: "write", Seq: seq, Bytes: m})
		}
		if err != nil {
			return terminal{op: "write", seq: seq, err: err}
		}
	}
	for read < wrote {
		n, err := c.read(c.cfg.count, buf)
		read += n
		if err != nil {
			return terminal{op: "read", seq: c.cfg.count, err: err}
		}
	}
	return terminal{}
}

// drain reads whatever the socket holds without blocking and logs it as
// one read event; it returns io.EOF when the server has closed.
func (c *client) drain(seq int, buf []byte) (int, error) {
	total := 0
	for {
		var n int
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return true // One attempt: EAGAIN means drained.
		})
		if err == nil {
			err = rerr
		}
		switch {
		case n > 0:
			total += n
			continue
		case err == nil:
			err = io.EOF // read(2) returned 0: the server's FIN.
		case errors.Is(err, unix.EAGAIN):
			err = nil
		}
		if total > 0 {
			c.w.Emit(Event{Ev: "read", Seq: seq, Bytes: total})
		}
		return total, err
	}
}
