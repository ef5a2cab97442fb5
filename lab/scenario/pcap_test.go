package scenario

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePcap writes a microsecond pcap with the given Ethernet frames.
func writePcap(t *testing.T, frames [][]byte, at time.Time) string {
	t.Helper()
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(b[4:], 2)
	binary.LittleEndian.PutUint16(b[6:], 4)
	binary.LittleEndian.PutUint32(b[16:], 65535)
	binary.LittleEndian.PutUint32(b[20:], 1)
	for i, f := range frames {
		rh := make([]byte, 16)
		ts := at.Add(time.Duration(i) * time.Second)
		binary.LittleEndian.PutUint32(rh[0:], uint32(ts.Unix()))
		binary.LittleEndian.PutUint32(rh[4:], uint32(ts.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(rh[8:], uint32(len(f)))
		binary.LittleEndian.PutUint32(rh[12:], uint32(len(f)))
		b = append(append(b, rh...), f...)
	}
	path := filepath.Join(t.TempDir(), "x.pcap")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func ipv4Frame(proto byte, payload []byte) []byte {
	f := make([]byte, 14, 64)
	f[12], f[13] = 0x08, 0x00
	ip := make([]byte, 20)
	ip[0] = 0x45
	ip[9] = proto
	copy(ip[12:], []byte{192, 168, 77, 254})
	copy(ip[16:], []byte{192, 168, 77, 1})
	return append(append(f, ip...), payload...)
}

func TestReadICMPUnreachable(t *testing.T) {
	at := time.Unix(1795614000, 250000000)
	host := ipv4Frame(1, []byte{3, 1, 0, 0, 0, 0, 0, 0})
	echo := ipv4Frame(1, []byte{8, 0, 0, 0, 0, 0, 0, 0})
	tcp := ipv4Frame(6, make([]byte, 20))
	arp := append(make([]byte, 12), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	path := writePcap(t, [][]byte{tcp, echo, arp, host}, at)
	got, err := readICMPUnreachable(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Code != icmpHostUnreach || got[0].From != [4]byte{192, 168, 77, 254} {
		t.Fatalf("got %+v, want one host unreachable from 192.168.77.254", got)
	}
	if want := at.Add(3 * time.Second); !got[0].At.Equal(want) {
		t.Fatalf("stamp %v, want %v", got[0].At, want)
	}
	// A capture cut mid-record still yields what precedes the cut.
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := readICMPUnreachable(path); err != nil || len(got) != 0 {
		t.Fatalf("truncated capture: %+v, %v", got, err)
	}
	if _, err := readICMPUnreachable(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing capture gave no error")
	}
}
