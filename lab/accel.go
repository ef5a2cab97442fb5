package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/vms"
)

// probeTimeout bounds the KVM probe boot. Under KVM the guest is ready in
// well under a second; a KVM that hangs in the decompressor never is.
const probeTimeout = 20 * time.Second

// probeDomain is the transient name of the KVM probe guest.
const probeDomain = vms.DomainPrefix + "probe-kvm"

// accelRecord caches a probe's outcome (cache/accel.json).
type accelRecord struct {
	Key    string    `json:"key"`
	Accel  vms.Accel `json:"accel"`
	Reason string    `json:"reason"`
	When   time.Time `json:"when"`
}

// chooseAccel decides KVM or TCG. "auto" trusts only an outcome: a probe
// guest booted under KVM must reach its init; otherwise TCG, with a one-line
// notice. The outcome is cached per host kernel, hypervisor and image.
func chooseAccel(ctx context.Context, cfg Config, hv *vms.Hypervisor, img provision.Image) (vms.Accel, error) {
	if cfg.Accel != "auto" {
		return vms.Accel(cfg.Accel), nil
	}
	local := isLocalURI(cfg.URI)
	if local {
		if _, err := os.Stat("/dev/kvm"); err != nil {
			cfg.Log.Warn("KVM unavailable (no /dev/kvm): guests run under TCG, slower")
			return vms.AccelTCG, nil
		}
	}
	key := accelKey(cfg.URI, img.KernelRelease)
	path := filepath.Join(cfg.cacheDir(), "accel.json")
	var rec accelRecord
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &rec) == nil && rec.Key == key {
		if rec.Accel == vms.AccelTCG {
			cfg.Log.Warn("guests run under TCG: KVM did not boot a probe guest here (cached in " + path + ")")
		}
		return rec.Accel, nil
	}
	cfg.Log.Info("probing KVM by booting a guest under it", "timeout", probeTimeout)
	reason := probeKVM(ctx, cfg, hv, img)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	rec = accelRecord{Key: key, Accel: vms.AccelKVM, Reason: "probe guest booted under KVM", When: time.Now().UTC()}
	if reason != nil {
		rec.Accel, rec.Reason = vms.AccelTCG, reason.Error()
		cfg.Log.Warn("KVM did not boot a guest here: guests run under TCG", "reason", rec.Reason)
	}
	if b, err := json.MarshalIndent(rec, "", "  "); err == nil {
		_ = os.WriteFile(path, b, 0o644) // A lost cache entry only costs another probe.
	}
	return rec.Accel, nil
}

// probeKVM boots the image under KVM and returns nil if the init got ready.
func probeKVM(ctx context.Context, cfg Config, hv *vms.Hypervisor, img provision.Image) error {
	dir, err := os.MkdirTemp(cfg.cacheDir(), "probe-")
	if err != nil {
		return fmt.Errorf("probe folder: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := makeLabDir(dir); err != nil {
		return fmt.Errorf("probe folder: %w", err)
	}
	host, err := provision.GenerateKey()
	if err != nil {
		return err
	}
	initrd := filepath.Join(dir, "probe.initrd")
	if err := provision.WriteGuestInitrd(ctx, img.Initrd, initrd, host, []ssh.PublicKey{host.PublicKey()}); err != nil {
		return err
	}
	if err := handInitrd(initrd); err != nil {
		return err
	}
	port, err := freeTCPPort()
	if err != nil {
		return err
	}
	g := GuestState{Role: "probe", MgmtMAC: randomMAC()}
	m := vms.Machine{
		Name: probeDomain, Lab: "probe", Role: "probe", Kernel: img.Kernel, Initrd: initrd,
		Cmdline: guestCmdline(g, time.Second, nil), MemoryMiB: 128, VCPUs: 1, Accel: vms.AccelKVM,
		Console: filepath.Join(dir, "console.log"), MgmtMAC: g.MgmtMAC, MgmtPort: port,
	}
	cleanup := func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = hv.Remove(c, probeDomain)
	}
	cleanup() // A probe cut short earlier.
	defer cleanup()
	if err := hv.Define(ctx, m); err != nil {
		return err
	}
	if err := hv.Start(ctx, m.Name); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	stopped := func() bool {
		st, err := hv.State(pctx, probeDomain)
		return err == nil && st != vms.StateRunning
	}
	if err := waitConsole(pctx, m.Console, 0, ReadyMarker, stopped); err != nil {
		return fmt.Errorf("kvm probe: %w", err)
	}
	return nil
}

// accelKey identifies the conditions a probe's outcome holds for: the
// hypervisor, the host kernel and the guest kernel.
func accelKey(uri, guestKernel string) string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return strings.Join([]string{uri, unix.ByteSliceToString(u.Release[:]), guestKernel}, "|")
}

// isLocalURI reports whether uri names a hypervisor on this machine.
func isLocalURI(uri string) bool {
	u, err := url.Parse(uri)
	return err == nil && u.Host == "" && !strings.Contains(u.Scheme, "+ssh") && !strings.Contains(u.Scheme, "+tcp") && !strings.Contains(u.Scheme, "+tls")
}
