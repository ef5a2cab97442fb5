package probes

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TCPInfo is a socket's struct tcp_info (include/uapi/linux/tcp.h) as the
// kernel sent it in INET_DIAG_INFO. The struct grows with the kernel: fields
// that end past Len were not sent, read as zero and are left out of the
// JSON form (see tcpInfoFields for the names and units).
type TCPInfo struct {
	unix.TCPInfo
	// SndWscale and RcvWscale are the window scale shifts, the bit fields
	// of byte 6 that unix.TCPInfo leaves out.
	SndWscale, RcvWscale uint8
	// DeliveryRateAppLimited and FastopenClientFail are the bit fields of
	// byte 7.
	DeliveryRateAppLimited, FastopenClientFail uint8
	// Len is the length of the kernel's struct tcp_info in bytes.
	Len int
}

// tcpInfoField is one field of struct tcp_info: its JSON name (the kernel's
// without "tcpi_", with a unit suffix for times), its byte offset, and for a
// bit field its width and shift within the byte.
type tcpInfoField struct {
	name         string
	off          int
	width, shift uint8
	ptr          func(*TCPInfo) any // *uint8, *uint16, *uint32 or *uint64
}

// tcpInfoFields lists struct tcp_info's fields in kernel order, up to
// Linux 6.18. Times are µs (_us) or ms (_ms) as the kernel gives them;
// rates are bytes per second.
var tcpInfoFields = []tcpInfoField{
	{name: "state", off: 0, ptr: func(t *TCPInfo) any { return &t.State }},
	{name: "ca_state", off: 1, ptr: func(t *TCPInfo) any { return &t.Ca_state }},
	{name: "retransmits", off: 2, ptr: func(t *TCPInfo) any { return &t.Retransmits }},
	{name: "probes", off: 3, ptr: func(t *TCPInfo) any { return &t.Probes }},
	{name: "backoff", off: 4, ptr: func(t *TCPInfo) any { return &t.Backoff }},
	{name: "options", off: 5, ptr: func(t *TCPInfo) any { return &t.Options }},
	{name: "snd_wscale", off: 6, width: 4, ptr: func(t *TCPInfo) any { return &t.SndWscale }},
	{name: "rcv_wscale", off: 6, width: 4, shift: 4, ptr: func(t *TCPInfo) any { return &t.RcvWscale }},
	{name: "delivery_rate_app_limited", off: 7, width: 1, ptr: func(t *TCPInfo) any { return &t.DeliveryRateAppLimited }},
	{name: "fastopen_client_fail", off: 7, width: 2, shift: 1, ptr: func(t *TCPInfo) any { return &t.FastopenClientFail }},
	{name: "rto_us", off: 8, ptr: func(t *TCPInfo) any { return &t.Rto }},
	{name: "ato_us", off: 12, ptr: func(t *TCPInfo) any { return &t.Ato }},
	{name: "snd_mss", off: 16, ptr: func(t *TCPInfo) any { return &t.Snd_mss }},
	{name: "rcv_mss", off: 20, ptr: func(t *TCPInfo) any { return &t.Rcv_mss }},
	{name: "unacked", off: 24, ptr: func(t *TCPInfo) any { return &t.Unacked }},
	{name: "sacked", off: 28, ptr: func(t *TCPInfo) any { return &t.Sacked }},
	{name: "lost", off: 32, ptr: func(t *TCPInfo) any { return &t.Lost }},
	{name: "retrans", off: 36, ptr: func(t *TCPInfo) any { return &t.Retrans }},
	{name: "fackets", off: 40, ptr: func(t *TCPInfo) any { return &t.Fackets }},
	{name: "last_data_sent_ms", off: 44, ptr: func(t *TCPInfo) any { return &t.Last_data_sent }},
	{name: "last_ack_sent_ms", off: 48, ptr: func(t *TCPInfo) any { return &t.Last_ack_sent }},
	{name: "last_data_recv_ms", off: 52, ptr: func(t *TCPInfo) any { return &t.Last_data_recv }},
	{name: "last_ack_recv_ms", off: 56, ptr: func(t *TCPInfo) any { return &t.Last_ack_recv }},
	{name: "pmtu", off: 60, ptr: func(t *TCPInfo) any { return &t.Pmtu }},
	{name: "rcv_ssthresh", off: 64, ptr: func(t *TCPInfo) any { return &t.Rcv_ssthresh }},
	{name: "rtt_us", off: 68, ptr: func(t *TCPInfo) any { return &t.Rtt }},
	{name: "rttvar_us", off: 72, ptr: func(t *TCPInfo) any { return &t.Rttvar }},
	{name: "snd_ssthresh", off: 76, ptr: func(t *TCPInfo) any { return &t.Snd_ssthresh }},
	{name: "snd_cwnd", off: 80, ptr: func(t *TCPInfo) any { return &t.Snd_cwnd }},
	{name: "advmss", off: 84, ptr: func(t *TCPInfo) any { return &t.Advmss }},
	{name: "reordering", off: 88, ptr: func(t *TCPInfo) any { return &t.Reordering }},
	{name: "rcv_rtt_us", off: 92, ptr: func(t *TCPInfo) any { return &t.Rcv_rtt }},
	{name: "rcv_space", off: 96, ptr: func(t *TCPInfo) any { return &t.Rcv_space }},
	{name: "total_retrans", off: 100, ptr: func(t *TCPInfo) any { return &t.Total_retrans }},
	{name: "pacing_rate", off: 104, ptr: func(t *TCPInfo) any { return &t.Pacing_rate }},
	{name: "max_pacing_rate", off: 112, ptr: func(t *TCPInfo) any { return &t.Max_pacing_rate }},
	{name: "bytes_acked", off: 120, ptr: func(t *TCPInfo) any { return &t.Bytes_acked }},
	{name: "bytes_received", off: 128, ptr: func(t *TCPInfo) any { return &t.Bytes_received }},
	{name: "segs_out", off: 136, ptr: func(t *TCPInfo) any { return &t.Segs_out }},
	{name: "segs_in", off: 140, ptr: func(t *TCPInfo) any { return &t.Segs_in }},
	{name: "notsent_bytes", off: 144, ptr: func(t *TCPInfo) any { return &t.Notsent_bytes }},
	{name: "min_rtt_us", off: 148, ptr: func(t *TCPInfo) any { return &t.Min_rtt }},
	{name: "data_segs_in", off: 152, ptr: func(t *TCPInfo) any { return &t.Data_segs_in }},
	{name: "data_segs_out", off: 156, ptr: func(t *TCPInfo) any { return &t.Data_segs_out }},
	{name: "delivery_rate", off: 160, ptr: func(t *TCPInfo) any { return &t.Delivery_rate }},
	{name: "busy_time_us", off: 168, ptr: func(t *TCPInfo) any { return &t.Busy_time }},
	{name: "rwnd_limited_us", off: 176, ptr: func(t *TCPInfo) any { return &t.Rwnd_limited }},
	{name: "sndbuf_limited_us", off: 184, ptr: func(t *TCPInfo) any { return &t.Sndbuf_limited }},
	{name: "delivered", off: 192, ptr: func(t *TCPInfo) any { return &t.Delivered }},
	{name: "delivered_ce", off: 196, ptr: func(t *TCPInfo) any { return &t.Delivered_ce }},
	{name: "bytes_sent", off: 200, ptr: func(t *TCPInfo) any { return &t.Bytes_sent }},
	{name: "bytes_retrans", off: 208, ptr: func(t *TCPInfo) any { return &t.Bytes_retrans }},
	{name: "dsack_dups", off: 216, ptr: func(t *TCPInfo) any { return &t.Dsack_dups }},
	{name: "reord_seen", off: 220, ptr: func(t *TCPInfo) any { return &t.Reord_seen }},
	{name: "rcv_ooopack", off: 224, ptr: func(t *TCPInfo) any { return &t.Rcv_ooopack }},
	{name: "snd_wnd", off: 228, ptr: func(t *TCPInfo) any { return &t.Snd_wnd }},
	{name: "rcv_wnd", off: 232, ptr: func(t *TCPInfo) any { return &t.Rcv_wnd }},
	{name: "rehash", off: 236, ptr: func(t *TCPInfo) any { return &t.Rehash }},
	{name: "total_rto", off: 240, ptr: func(t *TCPInfo) any { return &t.Total_rto }},
	{name: "total_rto_recoveries", off: 242, ptr: func(t *TCPInfo) any { return &t.Total_rto_recoveries }},
	{name: "total_rto_time_ms", off: 244, ptr: func(t *TCPInfo) any { return &t.Total_rto_time }},
	{name: "received_ce", off: 248, ptr: func(t *TCPInfo) any { return &t.Received_ce }},
	{name: "delivered_e1_bytes", off: 252, ptr: func(t *TCPInfo) any { return &t.Delivered_e1_bytes }},
	{name: "delivered_e0_bytes", off: 256, ptr: func(t *TCPInfo) any { return &t.Delivered_e0_bytes }},
	{name: "delivered_ce_bytes", off: 260, ptr: func(t *TCPInfo) any { return &t.Delivered_ce_bytes }},
	{name: "received_e1_bytes", off: 264, ptr: func(t *TCPInfo) any { return &t.Received_e1_bytes }},
	{name: "received_e0_bytes", off: 268, ptr: func(t *TCPInfo) any { return &t.Received_e0_bytes }},
	{name: "received_ce_bytes", off: 272, ptr: func(t *TCPInfo) any { return &t.Received_ce_bytes }},
}

// size is the field's storage size in bytes.
func (f tcpInfoField) size() int {
	switch f.ptr(&TCPInfo{}).(type) {
	case *uint8:
		return 1
	case *uint16:
		return 2
	case *uint32:
		return 4
	default:
		return 8
	}
}

// sent reports whether the kernel's struct of length n holds the field.
func (f tcpInfoField) sent(n int) bool { return f.off+f.size() <= n }

// get returns the field's value.
func (f tcpInfoField) get(t *TCPInfo) uint64 {
	switch p := f.ptr(t).(type) {
	case *uint8:
		return uint64(*p)
	case *uint16:
		return uint64(*p)
	case *uint32:
		return uint64(*p)
	default:
		return *p.(*uint64)
	}
}

// set stores v, truncated to the field's size.
func (f tcpInfoField) set(t *TCPInfo, v uint64) {
	switch p := f.ptr(t).(type) {
	case *uint8:
		*p = uint8(v)
	case *uint16:
		*p = uint16(v)
	case *uint32:
		*p = uint32(v)
	default:
		*p.(*uint64) = v
	}
}

// ParseTCPInfo decodes the payload of an INET_DIAG_INFO attribute, a struct
// tcp_info in the kernel's byte order and of the kernel's length.
func ParseTCPInfo(b []byte) *TCPInfo {
	t := &TCPInfo{Len: len(b)}
	ne := binary.NativeEndian
	for _, f := range tcpInfoFields {
		if !f.sent(len(b)) {
			continue
		}
		var v uint64
		switch f.size() {
		case 1:
			v = uint64(b[f.off])
		case 2:
			v = uint64(ne.Uint16(b[f.off:]))
		case 4:
			v = uint64(ne.Uint32(b[f.off:]))
		default:
			v = ne.Uint64(b[f.off:])
		}
		if f.width > 0 {
			v = v >> f.shift & (1<<f.width - 1)
		}
		f.set(t, v)
	}
	return t
}

// MarshalJSON writes the fields the kernel sent, in kernel order; state is
// the state's name.
func (t TCPInfo) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for _, f := range tcpInfoFields {
		if !f.sent(t.Len) {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		if f.name == "state" {
			b = strconv.AppendQuote(b, State(t.State).String())
		} else {
			b = strconv.AppendUint(b, f.get(&t), 10)
		}
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes; Len becomes the end of the
// last field present.
func (t *TCPInfo) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("tcp_info: %w", err)
	}
	*t = TCPInfo{}
	for _, f := range tcpInfoFields {
		raw, ok := m[f.name]
		if !ok {
			continue
		}
		if f.name == "state" {
			var name string
			if err := json.Unmarshal(raw, &name); err != nil {
				return fmt.Errorf("tcp_info state: %w", err)
			}
			t.State = uint8(stateByName(name))
		} else {
			v, err := strconv.ParseUint(string(raw), 10, 64)
			if err != nil {
				return fmt.Errorf("tcp_info %s: %w", f.name, err)
			}
			f.set(t, v)
		}
		t.Len = max(t.Len, f.off+f.size())
	}
	return nil
}

// stateByName is the state named name (as State.String writes it), or 0.
func stateByName(name string) State {
	for s, n := range stateNames {
		if n == name {
			return State(s)
		}
	}
	if hex, ok := strings.CutPrefix(name, "UNKNOWN_"); ok {
		if v, err := strconv.ParseUint(hex, 16, 8); err == nil {
			return State(v)
		}
	}
	return 0
}

// MemInfo is a socket's memory accounting, the SK_MEMINFO_* array of
// INET_DIAG_SKMEMINFO: bytes, except Drops (packets dropped before they
// reached the socket).
type MemInfo struct {
	RmemAlloc  uint32 `json:"rmem_alloc"`  // receive queue
	Rcvbuf     uint32 `json:"rcvbuf"`      // SO_RCVBUF
	WmemAlloc  uint32 `json:"wmem_alloc"`  // in flight below the socket (qdisc, driver)
	Sndbuf     uint32 `json:"sndbuf"`      // SO_SNDBUF
	FwdAlloc   uint32 `json:"fwd_alloc"`   // reserved, not yet used
	WmemQueued uint32 `json:"wmem_queued"` // write queue
	Optmem     uint32 `json:"optmem"`      // option memory
	Backlog    uint32 `json:"backlog"`     // backlog queue
	Drops      uint32 `json:"drops"`       // sk_drops
}

// ParseMemInfo decodes the payload of an INET_DIAG_SKMEMINFO attribute, an
// array of u32 in the kernel's byte order; entries it lacks are zero.
func ParseMemInfo(b []byte) *MemInfo {
	m := &MemInfo{}
	for i, p := range []*uint32{&m.RmemAlloc, &m.Rcvbuf, &m.WmemAlloc, &m.Sndbuf, &m.FwdAlloc,
		&m.WmemQueued, &m.Optmem, &m.Backlog, &m.Drops} {
		if 4*i+4 <= len(b) {
			*p = binary.NativeEndian.Uint32(b[4*i:])
		}
	}
	return m
}
