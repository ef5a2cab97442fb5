package guestinit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"
)

func encodeEvent(sec, usec int64, typ, code uint16, value int32) []byte {
	b := make([]byte, InputEventSize)
	binary.LittleEndian.PutUint64(b[0:], uint64(sec))
	binary.LittleEndian.PutUint64(b[8:], uint64(usec))
	binary.LittleEndian.PutUint16(b[16:], typ)
	binary.LittleEndian.PutUint16(b[18:], code)
	binary.LittleEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestDecodeInputEvent(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		want  InputEvent
		press bool
	}{
		{"power press", encodeEvent(12, 345678, EvKey, KeyPower, 1), InputEvent{12*time.Second + 345678*time.Microsecond, EvKey, KeyPower, 1}, true},
		{"power release", encodeEvent(12, 400000, EvKey, KeyPower, 0), InputEvent{12*time.Second + 400*time.Millisecond, EvKey, KeyPower, 0}, false},
		{"power autorepeat", encodeEvent(1, 0, EvKey, KeyPower, 2), InputEvent{time.Second, EvKey, KeyPower, 2}, false},
		{"other key", encodeEvent(1, 0, EvKey, 30, 1), InputEvent{time.Second, EvKey, 30, 1}, false},
		{"sync event", encodeEvent(1, 0, 0, 0, 0), InputEvent{Time: time.Second}, false},
		{"negative value", encodeEvent(0, 1, 2, 0, -5), InputEvent{time.Microsecond, 2, 0, -5}, false},
	}
	for _, tt := range tests {
		got, err := DecodeInputEvent(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want || got.PowerPress() != tt.press {
			t.Errorf("%s: got %+v press %v, want %+v press %v", tt.name, got, got.PowerPress(), tt.want, tt.press)
		}
	}
	if _, err := DecodeInputEvent(make([]byte, 16)); err == nil {
		t.Error("short event decoded without error")
	}
}

func TestWatchPowerKey(t *testing.T) {
	var stream bytes.Buffer
	stream.Write(encodeEvent(1, 0, EvKey, 30, 1))
	stream.Write(encodeEvent(2, 0, EvKey, KeyPower, 1))
	stream.Write(encodeEvent(2, 0, 0, 0, 0))
	stream.Write(encodeEvent(2, 1, EvKey, KeyPower, 0))
	pressed := make(chan struct{}, 1)
	err := watchPowerKey(&stream, pressed)
	if !errors.Is(err, io.EOF) {
		t.Errorf("watch ended with %v, want EOF", err)
	}
	select {
	case <-pressed:
	default:
		t.Error("power press not reported")
	}
}
