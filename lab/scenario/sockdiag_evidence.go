package scenario

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/timeline"
)

// SockSample is one hostlab-sockstat line (a socket of the echo port as its
// guest's kernel reported it over sock_diag) placed on the host axis; the
// fields verdicts read.
type SockSample struct {
	// Ev is "sock" or "sock_gone".
	Ev string `json:"ev"`
	// MonoNS is the guest's stamp, taken right after the sample was read.
	MonoNS int64 `json:"mono_ns"`
	// Local, Peer and State identify the socket.
	Local string `json:"local"`
	Peer  string `json:"peer"`
	State string `json:"state"`
	// TxQueue and RxQueue are the bytes unacknowledged and unread.
	TxQueue uint32 `json:"tx_queue"`
	RxQueue uint32 `json:"rx_queue"`
	// Timer is the pending timer (on, keepalive, timewait, probe, off).
	Timer string `json:"timer"`
	// Probes is icsk_probes_out.
	Probes uint32 `json:"probes"`
	// Mem is the memory accounting: the receive queue against SO_RCVBUF.
	Mem *struct {
		RmemAlloc uint32 `json:"rmem_alloc"`
		Rcvbuf    uint32 `json:"rcvbuf"`
	} `json:"skmem,omitempty"`
	// At is the host time of the stamp and Uncert its ± bound.
	At     time.Time     `json:"-"`
	Uncert time.Duration `json:"-"`
}

// sockdiagSamples places the run's sock_diag samples so far on the host
// axis, by role.
func (r *Run) sockdiagSamples() map[string][]SockSample {
	out := map[string][]SockSample{}
	for role, p := range r.sockstat {
		clk, ok := r.clock[role]
		if p == nil || !ok {
			continue
		}
		for _, line := range p.rawLines() {
			var s SockSample
			if json.Unmarshal(line, &s) != nil || (s.Ev != "sock" && s.Ev != "sock_gone") || s.MonoNS == 0 {
				continue
			}
			s.At, s.Uncert = clk.HostTimeFromMono(s.MonoNS)
			out[role] = append(out[role], s)
		}
	}
	return out
}

// addSockdiag adds a recorded sock_diag timeline event to the evidence.
func (ev *Evidence) addSockdiag(e timeline.Event) {
	var s SockSample
	if e.DecodeData(&s) != nil || (s.Ev != "sock" && s.Ev != "sock_gone") {
		return
	}
	s.At, s.Uncert = e.Host(), e.Uncert()
	role := strings.TrimPrefix(e.Src, "sockdiag-")
	if role != lab.RoleClient && role != lab.RoleServer {
		return
	}
	if ev.Sockdiag == nil {
		ev.Sockdiag = map[string][]SockSample{}
	}
	ev.Sockdiag[role] = append(ev.Sockdiag[role], s)
}
