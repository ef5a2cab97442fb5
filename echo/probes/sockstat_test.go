package probes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseSockstat(t *testing.T) {
	c, err := parseSockstat([]string{"--port", "9998"}, io.Discard)
	if err != nil || c != (sockstatConfig{port: 9998, interval: 100 * time.Millisecond}) {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	c, err = parseSockstat([]string{"--port=22", "--interval=10ms", "--duration", "2s"}, io.Discard)
	if err != nil || c != (sockstatConfig{port: 22, interval: 10 * time.Millisecond, duration: 2 * time.Second}) {
		t.Errorf("all flags: %+v, %v", c, err)
	}
	for _, args := range [][]string{
		nil, {"--port", "0"}, {"--port", "65536"}, {"--port", "1", "--interval", "0"},
		{"--port", "1", "--duration", "-1s"}, {"--port", "1", "extra"}, {"--nope"},
	} {
		if _, err := parseSockstat(args, io.Discard); err == nil {
			t.Errorf("parseSockstat(%q) accepted", args)
		}
	}
}

// TestRunSockstat drives the sampling loop with scripted tables: a first
// snapshot, a change, two identical read errors (one line), a
// disappearance, then a cancellation.
func TestRunSockstat(t *testing.T) {
	ap := netip.MustParseAddrPort
	conn := Socket{Local: ap("192.168.77.2:9998"), Peer: ap("192.168.77.1:40000"), State: StateEstablished, Inode: 1234}
	closing := conn
	closing.State, closing.Timer = StateFinWait2, TimerTimeWait
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readErr := errors.New("read /proc/net/tcp: boom")
	script := []func() ([]Socket, error){
		func() ([]Socket, error) { return []Socket{conn}, nil },
		func() ([]Socket, error) { return []Socket{conn}, nil },
		func() ([]Socket, error) { return []Socket{closing}, nil },
		func() ([]Socket, error) { return nil, readErr },
		func() ([]Socket, error) { return nil, readErr },
		func() ([]Socket, error) { cancel(); return nil, nil },
	}
	i := 0
	read := func() ([]Socket, error) {
		if i++; i > len(script) { // a tick raced the cancellation
			return nil, nil
		}
		return script[i-1]()
	}
	var buf bytes.Buffer
	out := &lineWriter{w: &buf}
	if reason := runSockstat(ctx, sockstatConfig{port: 9998, interval: time.Millisecond}, out, read); reason != "signal" {
		t.Errorf("reason %q, want signal", reason)
	}
	want := []string{
		`{"v":1,"ev":"sock","mono_ns":M,"real_ns":R,"local":"192.168.77.2:9998","peer":"192.168.77.1:40000","state":"ESTABLISHED","tx_queue":0,"rx_queue":0,"timer":"off","timer_ms":0,"retrnsmt":0,"probes":0,"inode":1234,"uid":0}`,
		`{"v":1,"ev":"sock","mono_ns":M,"real_ns":R,"local":"192.168.77.2:9998","peer":"192.168.77.1:40000","state":"FIN_WAIT2","tx_queue":0,"rx_queue":0,"timer":"timewait","timer_ms":0,"retrnsmt":0,"probes":0,"inode":1234,"uid":0}`,
		`{"v":1,"ev":"error","mono_ns":M,"real_ns":R,"op":"read socket tables","err":"read /proc/net/tcp: boom"}`,
		`{"v":1,"ev":"sock_gone","mono_ns":M,"real_ns":R,"local":"192.168.77.2:9998","peer":"192.168.77.1:40000","state":"FIN_WAIT2","tx_queue":0,"rx_queue":0,"timer":"timewait","timer_ms":0,"retrnsmt":0,"probes":0,"inode":1234,"uid":0}`,
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	var lastMono int64
	for j, l := range lines {
		var r SockRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.MonoNS < lastMono || r.RealNS == 0 {
			t.Errorf("line %d: stamps mono %d (previous %d), real %d", j, r.MonoNS, lastMono, r.RealNS)
		}
		lastMono = r.MonoNS
		l = strings.Replace(l, `"mono_ns":`+itoa(r.MonoNS), `"mono_ns":M`, 1)
		l = strings.Replace(l, `"real_ns":`+itoa(r.RealNS), `"real_ns":R`, 1)
		if l != want[j] {
			t.Errorf("line %d:\n got %s\nwant %s", j, l, want[j])
		}
	}
}

func TestRunSockstatDuration(t *testing.T) {
	out := &lineWriter{w: io.Discard}
	read := func() ([]Socket, error) { return nil, nil }
	if reason := runSockstat(context.Background(), sockstatConfig{port: 1, interval: time.Millisecond, duration: 20 * time.Millisecond}, out, read); reason != "duration" {
		t.Errorf("reason %q, want duration", reason)
	}
}

func TestRunSockstatOutputError(t *testing.T) {
	out := &lineWriter{w: failWriter{}}
	read := func() ([]Socket, error) {
		return []Socket{{Local: netip.MustParseAddrPort("127.0.0.1:1"), Peer: netip.MustParseAddrPort("0.0.0.0:0")}}, nil
	}
	if reason := runSockstat(context.Background(), sockstatConfig{port: 1, interval: time.Millisecond}, out, read); reason != "output" || !errors.Is(out.err, io.ErrClosedPipe) {
		t.Errorf("reason %q, error %v; want output, io.ErrClosedPipe", reason, out.err)
	}
}

func itoa(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
