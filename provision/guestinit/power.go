package guestinit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Linux input event constants used by the power button watcher.
const (
	InputEventSize = 24  // sizeof(struct input_event) on 64-bit Linux
	EvKey          = 1   // EV_KEY
	KeyPower       = 116 // KEY_POWER
)

// InputEvent is one decoded struct input_event.
type InputEvent struct {
	Time  time.Duration // timestamp (seconds and microseconds) as a duration
	Type  uint16
	Code  uint16
	Value int32
}

// PowerPress reports whether the event is a press of the power key.
func (e InputEvent) PowerPress() bool {
	return e.Type == EvKey && e.Code == KeyPower && e.Value == 1
}

// DecodeInputEvent decodes a 24-byte little-endian struct input_event.
func DecodeInputEvent(b []byte) (InputEvent, error) {
	if len(b) < InputEventSize {
		return InputEvent{}, fmt.Errorf("decode input event: %d bytes, want %d", len(b), InputEventSize)
	}
	sec := int64(binary.LittleEndian.Uint64(b[0:8]))
	usec := int64(binary.LittleEndian.Uint64(b[8:16]))
	return InputEvent{
		Time:  time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond,
		Type:  binary.LittleEndian.Uint16(b[16:18]),
		Code:  binary.LittleEndian.Uint16(b[18:20]),
		Value: int32(binary.LittleEndian.Uint32(b[20:24])),
	}, nil
}

// watchPowerKey reads input events from r and sends on pressed for every
// power key press, until r fails.
func watchPowerKey(r io.Reader, pressed chan<- struct{}) error {
	buf := make([]byte, InputEventSize*16)
	for {
		if _, err := io.ReadFull(r, buf[:InputEventSize]); err != nil {
			return fmt.Errorf("read input event: %w", err)
		}
		ev, err := DecodeInputEvent(buf[:InputEventSize])
		if err != nil {
			return err
		}
		if ev.PowerPress() {
			select {
			case pressed <- struct{}{}:
			default:
			}
		}
	}
}

// powerButton watches every /dev/input/event* device for the power key.
type powerButton struct {
	log     *Logger
	pressed chan struct{}
	mu      sync.Mutex
	watched map[string]bool
}

func newPowerButton(log *Logger) *powerButton {
	return &powerButton{log: log, pressed: make(chan struct{}, 1), watched: map[string]bool{}}
}

// scan starts a watcher for each event device not yet watched and returns
// how many it started.
func (p *powerButton) scan() int {
	paths, _ := filepath.Glob("/dev/input/event*")
	n := 0
	for _, path := range paths {
		p.mu.Lock()
		seen := p.watched[path]
		p.watched[path] = true
		p.mu.Unlock()
		if seen {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			p.log.Logf("power button: open %s: %v", path, err)
			continue
		}
		n++
		go func() {
			defer f.Close()
			defer recoverLog(p.log, "power button watcher")
			err := watchPowerKey(f, p.pressed)
			if !errors.Is(err, os.ErrClosed) {
				p.log.Logf("power button: %s: %v", path, err)
			}
		}()
	}
	return n
}

// rescan looks for late input devices a few times after boot.
func (p *powerButton) rescan() {
	defer recoverLog(p.log, "power button rescan")
	for _, d := range []time.Duration{time.Second, 3 * time.Second, 10 * time.Second} {
		time.Sleep(d)
		if n := p.scan(); n > 0 {
			p.log.Logf("power button: watching %d more input device(s)", n)
		}
	}
}
