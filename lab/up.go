package lab

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"

	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/vms"
)

// Management addresses. Lab links are UDP socket pairs on the host's
// loopback, so lab addresses exist only between the guests.
const (
	labPrefix     = 24
	mgmtGuestIP   = "10.0.2.15"
	mgmtGuestCIDR = mgmtGuestIP + "/24"
	clientKeyFile = "id_ed25519"
	guestSSHPort  = 22
)

// end is one end of a lab link: a guest's NIC and its address.
type end struct {
	role, ip, gateway string
}

// topology lists a lab's links, each a pair of ends, as a plain table.
func topology(routed bool) [][2]end {
	if !routed {
		return [][2]end{{{RoleClient, "192.168.77.1", ""}, {RoleServer, "192.168.77.2", ""}}}
	}
	return [][2]end{
		{{RoleClient, "192.168.77.1", "192.168.77.254"}, {RoleRouter, "192.168.77.254", ""}},
		{{RoleRouter, "192.168.78.254", ""}, {RoleServer, "192.168.78.2", "192.168.78.254"}},
	}
}

// guestRoles lists a lab's guests in boot order.
func guestRoles(routed bool) []string {
	if routed {
		return []string{RoleClient, RoleServer, RoleRouter}
	}
	return Roles
}

// routerSysctls make the router forward between its links.
var routerSysctls = []string{"net.ipv4.ip_forward=1"}

// step is one named stage of bringing a lab up, in the order run.
type step struct {
	name string
	fn   func(ctx context.Context) error
}

// upRun carries what the steps of Up share.
type upRun struct {
	cfg    Config
	hv     *vms.Hypervisor
	dir    string
	img    provision.Image
	accel  vms.Accel
	client provision.KeyPair
	state  *State
}

// Up brings a lab up: kernel and image (cached), keys, both domains, and
// waits until both guests answer SSH. On failure it removes everything it
// created. A lab that already exists is an error (ErrLabExists).
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.validateUp(); err != nil {
		return nil, fmt.Errorf("up lab %s: %w", cfg.Name, err)
	}
	if err := CheckFreeSpace(cfg.Home, minFreeBytes); err != nil {
		return nil, fmt.Errorf("up lab %s: %w", cfg.Name, err)
	}
	hv, err := vms.Connect(ctx, cfg.URI)
	if err != nil {
		return nil, err
	}
	r := &upRun{cfg: cfg, hv: hv, dir: cfg.labDir()}
	if err := r.checkAbsent(ctx); err != nil {
		hv.Close()
		return nil, err
	}
	steps := []step{
		{"kernel and image", r.image},
		{"accelerator", r.pickAccel},
		{"keys and initrds", r.keys},
		{"define and start guests", r.start},
	}
	for _, s := range steps {
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			r.rollback()
			hv.Close()
			return nil, fmt.Errorf("up lab %s: %s: %w", cfg.Name, s.name, err)
		}
		cfg.Log.Debug("step done", "step", s.name, "took", time.Since(t0).Round(time.Millisecond))
	}
	l := &Lab{cfg: cfg, hv: hv, dir: r.dir, State: r.state, signer: r.client.Signer}
	err = l.waitReady(ctx)
	if err == nil {
		err = l.checkBootSysctls(ctx, r.bootSysctls())
	}
	if err != nil {
		r.rollback()
		hv.Close()
		return nil, fmt.Errorf("up lab %s: %w", cfg.Name, err)
	}
	return l, nil
}

// checkAbsent refuses a second up of the same lab.
func (r *upRun) checkAbsent(ctx context.Context) error {
	if _, err := os.Stat(statePath(r.dir)); err == nil {
		return fmt.Errorf("lab %s: %w: use it, or run `hostlab down --lab %s` first", r.cfg.Name, ErrLabExists, r.cfg.Name)
	}
	for _, role := range Roles {
		st, err := r.hv.State(ctx, vms.DomainName(r.cfg.Name, role))
		if err != nil {
			return err
		}
		if st != vms.StateMissing {
			return fmt.Errorf("lab %s: %w: domain %s is defined (%s); run `hostlab down --lab %s` first",
				r.cfg.Name, ErrLabExists, vms.DomainName(r.cfg.Name, role), st, r.cfg.Name)
		}
	}
	return nil
}

func (r *upRun) progress(msg string) { r.cfg.Log.Info(msg, "lab", r.cfg.Name) }

func (r *upRun) image(ctx context.Context) error {
	k, err := provision.FetchKernel(ctx, r.cfg.cacheDir(), r.cfg.Kernel, r.progress)
	if err != nil {
		return err
	}
	r.img, err = provision.BuildImage(ctx, provision.ImageConfig{
		CacheDir: r.cfg.cacheDir(), Kernel: k, GuestBinary: r.cfg.GuestBinary,
	})
	return err
}

func (r *upRun) pickAccel(ctx context.Context) error {
	a, err := chooseAccel(ctx, r.cfg, r.hv, r.img)
	r.accel = a
	return err
}

// keys creates the lab folder, the client key and one host key and initrd per
// guest.
func (r *upRun) keys(ctx context.Context) error {
	if err := makeLabDir(r.dir); err != nil {
		return fmt.Errorf("create lab folder: %w", err)
	}
	var err error
	if r.client, err = provision.GenerateKey(); err != nil {
		return err
	}
	if err := r.client.Save(filepath.Join(r.dir, clientKeyFile)); err != nil {
		return err
	}
	r.state = &State{
		Version: stateVersion, Name: r.cfg.Name, URI: r.cfg.URI, Created: time.Now().UTC(),
		Accel: r.accel, KernelRelease: r.img.KernelRelease, ImageKey: r.img.Key, Grace: r.cfg.Grace,
		Routed: r.cfg.Routed,
	}
	for _, role := range guestRoles(r.cfg.Routed) {
		host, err := provision.GenerateKey()
		if err != nil {
			return err
		}
		g := GuestState{
			Role: role, Domain: vms.DomainName(r.cfg.Name, role), MgmtMAC: randomMAC(),
			HostKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(host.PublicKey()))),
			Initrd:    filepath.Join(r.dir, role+".initrd"),
			Console:   filepath.Join(r.dir, role+".console.log"),
			MemoryMiB: r.cfg.MemoryMiB,
		}
		if err := provision.WriteGuestInitrd(ctx, r.img.Initrd, g.Initrd, host, []ssh.PublicKey{r.client.PublicKey()}); err != nil {
			return err
		}
		if err := handInitrd(g.Initrd); err != nil {
			return err
		}
		r.state.Guests = append(r.state.Guests, g)
	}
	return nil
}

// wire gives every guest its lab NICs: a MAC, an address and a UDP port
// pair per link end.
func (r *upRun) wire() error {
	links := topology(r.cfg.Routed)
	ports, err := freeUDPPorts(2 * len(links))
	if err != nil {
		return err
	}
	for i, link := range links {
		for side, e := range link {
			g, err := r.state.Guest(e.role)
			if err != nil {
				return err
			}
			n := len(g.Links)
			g.Links = append(g.Links, LinkState{
				MAC: randomMAC(), IP: e.ip, Prefix: labPrefix, Gateway: e.gateway,
				Pcap:      filepath.Join(r.dir, fmt.Sprintf("%s.lab%d.pcap", e.role, n)),
				LocalPort: ports[2*i+side], RemotePort: ports[2*i+1-side],
			})
		}
	}
	return nil
}

// start allocates ports, defines the domains and starts them.
func (r *upRun) start(ctx context.Context) error {
	if err := r.wire(); err != nil {
		return err
	}
	var err error
	for i := range r.state.Guests {
		if r.state.Guests[i].MgmtPort, err = freeTCPPort(); err != nil {
			return err
		}
	}
	if err := writeState(r.dir, r.state); err != nil {
		return err
	}
	for _, g := range r.state.Guests {
		m := r.machine(g)
		for _, p := range m.Pcaps {
			if err := prepareQEMUFile(p); err != nil {
				return err
			}
		}
		if err := r.hv.Define(ctx, m); err != nil {
			return err
		}
	}
	// Both guests start at once: QEMU's start-up is most of a start.
	eg, ectx := errgroup.WithContext(ctx)
	for _, g := range r.state.Guests {
		eg.Go(func() error {
			if err := r.hv.Start(ectx, g.Domain); err != nil {
				if !portFree(g.MgmtPort) {
					return fmt.Errorf("%w (port 127.0.0.1:%d was taken meanwhile: run up again)", err, g.MgmtPort)
				}
				return err
			}
			return nil
		})
	}
	return eg.Wait()
}

// guestSysctls are the sysctls guest role's init applies at boot.
func (r *upRun) guestSysctls(role string) []string {
	sysctls := r.cfg.Sysctls[role]
	if role == RoleRouter {
		sysctls = append(append([]string(nil), routerSysctls...), sysctls...)
	}
	return sysctls
}

// bootSysctls are the boot sysctls of every guest, by role.
func (r *upRun) bootSysctls() map[string][]string {
	m := map[string][]string{}
	for _, g := range r.state.Guests {
		m[g.Role] = r.guestSysctls(g.Role)
	}
	return m
}

// machine is the domain description of guest g.
func (r *upRun) machine(g GuestState) vms.Machine {
	sysctls := r.guestSysctls(g.Role)
	m := vms.Machine{
		Name: g.Domain, Lab: r.cfg.Name, Role: g.Role,
		Kernel: r.img.Kernel, Initrd: g.Initrd,
		Cmdline:   guestCmdline(g, r.cfg.Grace, sysctls),
		MemoryMiB: g.MemoryMiB, VCPUs: 1, Accel: r.accel, Console: g.Console,
		MgmtMAC: g.MgmtMAC, MgmtPort: g.MgmtPort,
	}
	for _, l := range g.Links {
		m.Links = append(m.Links, vms.Link{MAC: l.MAC, LocalPort: l.LocalPort, RemotePort: l.RemotePort})
		m.Pcaps = append(m.Pcaps, l.Pcap)
	}
	return m
}

// guestCmdline is the kernel command line the guest init reads its
// configuration from (see provision/guestinit).
func guestCmdline(g GuestState, grace time.Duration, sysctls []string) string {
	parts := []string{
		"console=ttyS0", "panic=-1", "quiet", "mitigations=off",
		"hostlab.name=" + g.Role,
		fmt.Sprintf("hostlab.net=%s,%s", g.MgmtMAC, mgmtGuestCIDR),
		fmt.Sprintf("hostlab.ssh=%s:%d", mgmtGuestIP, guestSSHPort),
		"hostlab.grace=" + grace.String(),
	}
	for _, l := range g.Links {
		nic := fmt.Sprintf("hostlab.net=%s,%s/%d", l.MAC, l.IP, l.Prefix)
		if l.Gateway != "" {
			nic += "," + l.Gateway
		}
		parts = append(parts, nic)
	}
	for _, s := range sysctls {
		parts = append(parts, "hostlab.sysctl="+s)
	}
	return strings.Join(parts, " ")
}

// rollback removes whatever Up created.
func (r *upRun) rollback() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := removeLab(ctx, r.hv, r.cfg.Name, r.dir); err != nil {
		r.cfg.Log.Warn("clean up after failed up", "lab", r.cfg.Name, "err", err)
	}
}

// randomMAC returns a locally administered unicast MAC in QEMU's 52:54:00
// range.
func randomMAC() string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}

// prepareQEMUFile creates an empty file QEMU (running as libvirt-qemu) can
// write.
func prepareQEMUFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	f.Close()
	if uid, gid, ok := qemuUser(); ok {
		if err := os.Chown(path, uid, gid); err != nil {
			return fmt.Errorf("hand %s to the qemu user: %w", path, err)
		}
	}
	return nil
}

// waitReady waits until every guest answers SSH, in parallel.
func (l *Lab) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.BootTimeout)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	t0 := time.Now()
	roles := guestRoles(l.State.Routed)
	l.cfg.Log.Info("booting guests", "lab", l.Name(), "guests", strings.Join(roles, ","), "accel", l.State.Accel)
	times := make([]time.Duration, len(roles))
	for i, role := range roles {
		g.Go(func() error {
			gs, err := l.State.Guest(role)
			if err != nil {
				return err
			}
			// The init announces on the console when sshd listens; dialling
			// earlier only meets QEMU's port forward with nobody behind it.
			stopped := func() bool {
				st, err := l.hv.State(ctx, gs.Domain)
				return err == nil && st != vms.StateRunning
			}
			if err := waitConsole(ctx, gs.Console, 0, ReadyMarker, stopped); err != nil {
				return l.bootError(role, err)
			}
			c, err := l.Dial(ctx, role)
			if err != nil {
				return l.bootError(role, err)
			}
			times[i] = time.Since(t0)
			l.cfg.Log.Info("guest answers ssh", "guest", role, "after", times[i].Round(10*time.Millisecond))
			return c.Close()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	l.BootTimes = map[string]time.Duration{}
	for i, role := range roles {
		l.BootTimes[role] = times[i]
	}
	return nil
}

// bootError adds the tail of a guest's console to a boot failure.
func (l *Lab) bootError(role string, err error) error {
	g, gerr := l.State.Guest(role)
	if gerr != nil {
		return err
	}
	tail := consoleTail(g.Console, 12)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s guest did not answer ssh within %s; console %s ends:\n%s", role, l.cfg.BootTimeout, g.Console, tail)
	}
	return fmt.Errorf("%s guest: %w; console %s ends:\n%s", role, err, g.Console, tail)
}
