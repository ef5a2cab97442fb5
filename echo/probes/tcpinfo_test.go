package probes

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Lengths of struct tcp_info: Debian 12's 6.1 ends with tcpi_snd_wnd (seen
// in a guest); from 6.7 (Debian 13's 6.12) it ends with tcpi_total_rto_time,
// per the uapi header's history.
const (
	tcpInfoLen61  = 232
	tcpInfoLen612 = 248
)

// TestTCPInfoFieldsMatchUnix checks the table's offsets and sizes against
// golang.org/x/sys/unix's generated struct, field by field.
func TestTCPInfoFieldsMatchUnix(t *testing.T) {
	byKernel := map[string]tcpInfoField{}
	for _, f := range tcpInfoFields {
		k := f.name
		for _, unit := range []string{"_us", "_ms"} {
			k = strings.TrimSuffix(k, unit)
		}
		byKernel[k] = f
	}
	ty := reflect.TypeFor[unix.TCPInfo]()
	n := 0
	for i := range ty.NumField() {
		sf := ty.Field(i)
		if sf.Name == "_" {
			continue
		}
		n++
		f, ok := byKernel[strings.ToLower(sf.Name)]
		if !ok {
			t.Errorf("unix.TCPInfo.%s has no entry in tcpInfoFields", sf.Name)
			continue
		}
		if f.off != int(sf.Offset) || f.size() != int(sf.Type.Size()) || f.width != 0 {
			t.Errorf("%s: offset %d size %d width %d, unix.TCPInfo has offset %d size %d", f.name, f.off, f.size(), f.width, sf.Offset, sf.Type.Size())
		}
	}
	if bits := 4; len(tcpInfoFields) != n+bits {
		t.Errorf("tcpInfoFields has %d entries, want unix.TCPInfo's %d fields and %d bit fields", len(tcpInfoFields), n, bits)
	}
}

// tcpInfoFixture is a struct tcp_info of length n in native byte order in
// which every field's bytes hold its offset plus one, except for the fields
// that matter to the sampler, which hold plausible values.
func tcpInfoFixture(n int) []byte {
	b := make([]byte, unix.SizeofTCPInfo)
	ne := binary.NativeEndian
	for _, f := range tcpInfoFields {
		if f.width == 0 {
			for i := range f.size() {
				b[f.off+i] = byte(f.off + 1)
			}
		}
	}
	b[0], b[1], b[2], b[3], b[4] = byte(StateEstablished), 4, 3, 0, 3 // state, ca_state Loss, retransmits, probes, backoff
	b[6] = 7<<4 | 9                                                   // rcv_wscale 7, snd_wscale 9
	b[7] = 2<<1 | 1                                                   // fastopen_client_fail 2, app limited
	ne.PutUint32(b[8:], 1_632_000)                                    // rto_us
	ne.PutUint32(b[68:], 1_234)                                       // rtt_us
	ne.PutUint32(b[100:], 4)                                          // total_retrans
	ne.PutUint64(b[104:], 1<<40+5)                                    // pacing_rate
	ne.PutUint16(b[240:], 3)                                          // total_rto
	return b[:n]
}

func TestParseTCPInfo(t *testing.T) {
	for _, n := range []int{tcpInfoLen61, tcpInfoLen612, unix.SizeofTCPInfo, 104, 7, 0} {
		ti := ParseTCPInfo(tcpInfoFixture(n))
		if ti.Len != n {
			t.Errorf("len %d: Len %d", n, ti.Len)
		}
		if n < 104 {
			continue
		}
		if ti.State != uint8(StateEstablished) || ti.Ca_state != 4 || ti.Retransmits != 3 || ti.Backoff != 3 ||
			ti.Rto != 1_632_000 || ti.Rtt != 1_234 || ti.Total_retrans != 4 {
			t.Errorf("len %d: sampler fields %+v", n, ti.TCPInfo)
		}
		if ti.SndWscale != 9 || ti.RcvWscale != 7 || ti.FastopenClientFail != 2 || ti.DeliveryRateAppLimited != 1 {
			t.Errorf("len %d: bit fields snd_wscale %d rcv_wscale %d fastopen_client_fail %d app_limited %d",
				n, ti.SndWscale, ti.RcvWscale, ti.FastopenClientFail, ti.DeliveryRateAppLimited)
		}
		if ti.Ato != 0x0d0d0d0d || ti.Lost != 0x21212121 {
			t.Errorf("len %d: ato %#x lost %#x, want the fixture's 0x0d0d0d0d, 0x21212121", n, ti.Ato, ti.Lost)
		}
		if n >= tcpInfoLen61 && (ti.Pacing_rate != 1<<40+5 || ti.Snd_wnd != 0xe5e5e5e5) {
			t.Errorf("len %d: pacing_rate %d snd_wnd %#x", n, ti.Pacing_rate, ti.Snd_wnd)
		}
		if want := uint16(0); n >= tcpInfoLen612 && ti.Total_rto != 3 || n < tcpInfoLen612 && ti.Total_rto != want {
			t.Errorf("len %d: total_rto %d", n, ti.Total_rto)
		}
		if n < tcpInfoLen612 && (ti.Rcv_wnd != 0 || ti.Total_rto_time != 0) {
			t.Errorf("len %d: fields past the end not zero: rcv_wnd %d total_rto_time %d", n, ti.Rcv_wnd, ti.Total_rto_time)
		}
	}
}

// TestTCPInfoJSON checks that the JSON form holds what the kernel sent and
// nothing past it, and reads back to the same value.
func TestTCPInfoJSON(t *testing.T) {
	for _, n := range []int{tcpInfoLen61, tcpInfoLen612, unix.SizeofTCPInfo} {
		ti := ParseTCPInfo(tcpInfoFixture(n))
		b, err := json.Marshal(ti)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, want := range []string{`{"state":"ESTABLISHED","ca_state":4,"retransmits":3,"probes":0,"backoff":3,`,
			`"snd_wscale":9,"rcv_wscale":7,"delivery_rate_app_limited":1,"fastopen_client_fail":2,"rto_us":1632000,`,
			`"rtt_us":1234,`, `"total_retrans":4,"pacing_rate":1099511627781,`, `"snd_wnd":3857049061`} {
			if !strings.Contains(s, want) {
				t.Errorf("len %d: %s lacks %s", n, s, want)
			}
		}
		if has := strings.Contains(s, `"total_rto":3,`); has != (n >= tcpInfoLen612) {
			t.Errorf("len %d: total_rto present %v: %s", n, has, s)
		}
		if has := strings.Contains(s, `"rcv_wnd"`); has != (n > tcpInfoLen61) {
			t.Errorf("len %d: rcv_wnd present %v: %s", n, has, s)
		}
		var back TCPInfo
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		want := *ti
		last := tcpInfoFields[len(tcpInfoFields)-1]
		want.Len = min(want.Len, last.off+last.size()) // trailing padding is not a field
		if back != want {
			t.Errorf("len %d: round trip\n got %+v\nwant %+v", n, back, want)
		}
	}
	var ti TCPInfo
	if err := json.Unmarshal([]byte(`{"state":"UNKNOWN_0D","rto_us":200000}`), &ti); err != nil || ti.State != 0x0d || ti.Rto != 200000 || ti.Len != 12 {
		t.Errorf("unknown state: %+v, %v", ti, err)
	}
	for _, bad := range []string{`[]`, `{"state":1}`, `{"rto_us":-1}`, `{"rto_us":"x"}`} {
		if err := json.Unmarshal([]byte(bad), &ti); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
}

func TestParseMemInfo(t *testing.T) {
	b := make([]byte, 4*unix.SK_MEMINFO_VARS)
	for i := range unix.SK_MEMINFO_VARS {
		binary.NativeEndian.PutUint32(b[4*i:], uint32(100+i))
	}
	want := MemInfo{100, 101, 102, 103, 104, 105, 106, 107, 108}
	if m := ParseMemInfo(b); *m != want {
		t.Errorf("ParseMemInfo = %+v, want %+v", *m, want)
	}
	want.Drops = 0
	if m := ParseMemInfo(b[:4*unix.SK_MEMINFO_DROPS+2]); *m != want {
		t.Errorf("ParseMemInfo without drops = %+v, want %+v", *m, want)
	}
}
