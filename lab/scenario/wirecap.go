package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hostlab/hostlab/echo"
	"github.com/hostlab/hostlab/echo/probes"
	"github.com/hostlab/hostlab/lab"
)

// wireFile is the run folder's capture of the client's lab link stamped by
// the client kernel and placed on the host axis: the verdicts' wire.
const wireFile = "client.wire.pcap"

// startCapture starts the client guest's capture of its lab link. QEMU's
// own capture (ROLE.lab0.pcap) stamps frames with its virtual clock, which
// stands still while a domain is paused and so sits seconds off the host's;
// the guest kernel's stamps map onto the host axis through the clock fit.
func (r *Run) startCapture(ctx context.Context) error {
	c, err := r.guest(ctx, lab.RoleClient)
	if err != nil {
		return err
	}
	cl, _ := r.cfg.Lab.State.Guest(lab.RoleClient)
	p, err := startProc(ctx, c, r.Dir, "capture-client", lab.RoleClient, fmt.Sprintf("exec %s --addr %s", probes.CaptureName, cl.LabIP()))
	if err != nil {
		return err
	}
	r.capture = p
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return p.waitFor(wctx, "capture start", func(evs []echo.Event) bool { return countEv(evs, "start") > 0 })
}

// writeWire writes the client's capture as a pcap file in the run folder,
// each frame at the host time of its kernel stamp.
func (r *Run) writeWire() error {
	if r.capture == nil {
		return fmt.Errorf("no capture was started")
	}
	clk, ok := r.clock[lab.RoleClient]
	if !ok {
		return fmt.Errorf("no client clock fit")
	}
	var frames []pcapRecord
	for _, line := range r.capture.rawLines() {
		var rec probes.FrameRecord
		if json.Unmarshal(line, &rec) != nil || rec.Ev != "frame" || rec.StampNS == 0 {
			continue
		}
		at, _ := clk.HostTimeFromReal(rec.StampNS)
		frames = append(frames, pcapRecord{At: at, Data: rec.Data, Len: rec.Len})
	}
	return writeFramesPcap(filepath.Join(r.Dir, wireFile), frames)
}
