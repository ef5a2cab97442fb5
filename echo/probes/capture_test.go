package probes

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// TestCaptureLoopback captures a UDP datagram on the loopback interface and
// finds it with a kernel stamp close to now, in both directions.
func TestCaptureLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("AF_PACKET needs root")
	}
	ifi, err := interfaceWith("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() { done <- capture(ifi.Index, pw, &stop); pw.Close() }()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatal("no start line")
	}
	var start statusRecord
	if err := json.Unmarshal(sc.Bytes(), &start); err != nil || start.Ev != "start" {
		t.Fatalf("first line %q", sc.Text())
	}
	ln, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("udp4", ln.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if _, err := c.Write([]byte("hostlab-capture-test")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	dirs := map[bool]bool{}
	deadline := time.After(5 * time.Second)
	lines := make(chan []byte)
	go func() {
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
	}()
	for len(dirs) < 2 {
		select {
		case <-deadline:
			t.Fatalf("saw directions %v, want both", dirs)
		case l := <-lines:
			var rec FrameRecord
			if err := json.Unmarshal(l, &rec); err != nil || rec.Ev != "frame" {
				continue
			}
			if !bytes.Contains(rec.Data, []byte("hostlab-capture-test")) {
				continue
			}
			if d := time.Unix(0, rec.StampNS).Sub(sent); d < -time.Second || d > time.Second {
				t.Errorf("kernel stamp %v off the send by %v", time.Unix(0, rec.StampNS), d)
			}
			dirs[rec.Out] = true
		}
	}
	stop.Store(true)
	go func() {
		for range lines {
		}
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
