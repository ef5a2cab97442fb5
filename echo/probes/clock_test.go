package probes

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestServeClock(t *testing.T) {
	var out strings.Builder
	before := time.Now().UnixNano()
	if err := ServeClock(strings.NewReader("x\n\ny\n"+strings.Repeat("z", 10000)), &out); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixNano()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d replies %q, want 4 (one per line, the unterminated one too)", len(lines), out.String())
	}
	var lastMono int64
	for _, l := range lines {
		real, mono, err := ParseClockReply(l)
		if err != nil {
			t.Fatal(err)
		}
		if real < before || real > after || mono < lastMono {
			t.Errorf("reply %q: realtime outside [%d, %d] or monotonic went back from %d", l, before, after, lastMono)
		}
		lastMono = mono
	}
}

func TestServeClockEmpty(t *testing.T) {
	var out strings.Builder
	if err := ServeClock(strings.NewReader(""), &out); err != nil || out.Len() != 0 {
		t.Errorf("ServeClock(empty) = %v, wrote %q; want nil and nothing", err, out.String())
	}
}

// TestServeClockAnswersAtOnce sends the next probe only after the reply to
// the previous one arrived, as clocksync does: a buffered reply would hang.
func TestServeClockAnswersAtOnce(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeClock(inR, outW); outW.Close() }()
	br := bufio.NewReader(outR)
	for i := 0; i < 3; i++ {
		if _, err := io.WriteString(inW, "x\n"); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
		if _, _, err := ParseClockReply(line); err != nil {
			t.Fatal(err)
		}
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestServeClockWriteError(t *testing.T) {
	err := ServeClock(strings.NewReader("x\n"), failWriter{})
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("ServeClock to a closed pipe = %v, want io.ErrClosedPipe", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestParseClockReply(t *testing.T) {
	real, mono, err := ParseClockReply("1764060000123456789 51234567890\n")
	if err != nil || real != 1764060000123456789 || mono != 51234567890 {
		t.Errorf("ParseClockReply = %d, %d, %v", real, mono, err)
	}
	for _, bad := range []string{"", "1", "1 x", "x 1", "1  2", "1 2 3", "sh: hostlab-clock: not found"} {
		if _, _, err := ParseClockReply(bad); !errors.Is(err, errClockReply) {
			t.Errorf("ParseClockReply(%q) = %v, want errClockReply", bad, err)
		}
	}
}
