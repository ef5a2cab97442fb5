package echo

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestStateName(t *testing.T) {
	tests := []struct {
		state uint8
		want  string
	}{
		{unix.BPF_TCP_ESTABLISHED, "ESTABLISHED"},
		{unix.BPF_TCP_SYN_SENT, "SYN_SENT"},
		{unix.BPF_TCP_FIN_WAIT1, "FIN_WAIT1"},
		{unix.BPF_TCP_FIN_WAIT2, "FIN_WAIT2"},
		{unix.BPF_TCP_TIME_WAIT, "TIME_WAIT"},
		{unix.BPF_TCP_CLOSE, "CLOSE"},
		{unix.BPF_TCP_CLOSE_WAIT, "CLOSE_WAIT"},
		{unix.BPF_TCP_LAST_ACK, "LAST_ACK"},
		{unix.BPF_TCP_LISTEN, "LISTEN"},
		{unix.BPF_TCP_CLOSING, "CLOSING"},
		{unix.BPF_TCP_NEW_SYN_RECV, "NEW_SYN_RECV"},
		{0, "STATE_0"},
		{200, "STATE_200"},
	}
	for _, tt := range tests {
		if got := StateName(tt.state); got != tt.want {
			t.Errorf("StateName(%d) = %q, want %q", tt.state, got, tt.want)
		}
	}
}

func TestDecodeTCPInfo(t *testing.T) {
	raw := unix.TCPInfo{
		State: unix.BPF_TCP_CLOSE_WAIT, Ca_state: 4, Retransmits: 3, Probes: 2, Backoff: 5,
		Rto: 6528000, Rtt: 210, Rttvar: 80, Unacked: 1, Total_retrans: 7,
		Last_data_sent: 11, Last_data_recv: 12, Last_ack_recv: 13, Snd_cwnd: 1,
	}
	want := TCPInfo{
		State: "CLOSE_WAIT", CAState: 4, Retransmits: 3, Probes: 2, Backoff: 5,
		RTOus: 6528000, RTTus: 210, RTTVarus: 80, Unacked: 1, TotalRetrans: 7,
		LastDataSentMS: 11, LastDataRecvMS: 12, LastAckRecvMS: 13, SndCwnd: 1,
	}
	if got := DecodeTCPInfo(&raw); got != want {
		t.Errorf("DecodeTCPInfo = %+v, want %+v", got, want)
	}
}

func TestTCPInfoChanged(t *testing.T) {
	base := TCPInfo{State: "ESTABLISHED", RTOus: 204000}
	tests := []struct {
		name string
		mod  func(*TCPInfo)
		want bool
	}{
		{"same", func(*TCPInfo) {}, false},
		{"timers only", func(i *TCPInfo) { i.LastDataSentMS = 500; i.RTTus = 9 }, false},
		{"state", func(i *TCPInfo) { i.State = "CLOSE_WAIT" }, true},
		{"retransmits", func(i *TCPInfo) { i.Retransmits = 1 }, true},
		{"total_retrans", func(i *TCPInfo) { i.TotalRetrans = 1 }, true},
		{"backoff", func(i *TCPInfo) { i.Backoff = 1 }, true},
		{"rto", func(i *TCPInfo) { i.RTOus = 408000 }, true},
		{"unacked", func(i *TCPInfo) { i.Unacked = 1 }, true},
		{"probes", func(i *TCPInfo) { i.Probes = 1 }, true},
	}
	for _, tt := range tests {
		next := base
		tt.mod(&next)
		if got := next.Changed(base); got != tt.want {
			t.Errorf("%s: Changed = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseKeepalive(t *testing.T) {
	tests := []struct {
		in      string
		want    *Keepalive
		wantErr bool
	}{
		{"off", nil, false},
		{"", nil, false},
		{"5s,2s,3", &Keepalive{5 * time.Second, 2 * time.Second, 3}, false},
		{"1,1,2", &Keepalive{time.Second, time.Second, 2}, false},
		{"1m,15s,9", &Keepalive{time.Minute, 15 * time.Second, 9}, false},
		{"5s,2s", nil, true},
		{"500ms,1s,3", nil, true},
		{"5s,2s,0", nil, true},
		{"x,2s,3", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseKeepalive(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseKeepalive(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
			t.Errorf("ParseKeepalive(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
