package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/vms"
)

// Lab is a lab that is up: its state and a libvirt connection.
type Lab struct {
	// State is the lab's persisted description.
	State *State
	// BootTimes holds, after Up, each guest's time from start to answering
	// SSH.
	BootTimes map[string]time.Duration
	cfg       Config
	hv        *vms.Hypervisor
	dir       string
	signer    ssh.Signer
}

// Open connects to an existing lab.
func Open(ctx context.Context, cfg Config) (*Lab, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	dir := cfg.labDir()
	st, err := readState(dir, cfg.Name)
	if err != nil {
		return nil, err
	}
	key, err := provision.LoadKeyPair(filepath.Join(dir, clientKeyFile))
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", cfg.Name, err)
	}
	if cfg.URI == vms.ResolveURI("") && st.URI != "" {
		cfg.URI = st.URI
	}
	hv, err := vms.Connect(ctx, cfg.URI)
	if err != nil {
		return nil, err
	}
	return &Lab{State: st, cfg: cfg, hv: hv, dir: dir, signer: key.Signer}, nil
}

// Name returns the lab's name.
func (l *Lab) Name() string { return l.State.Name }

// Home returns the folder holding hostlab's cache and labs for this lab.
func (l *Lab) Home() string { return l.cfg.Home }

// Dir returns the lab's state folder.
func (l *Lab) Dir() string { return l.dir }

// Hypervisor returns the lab's libvirt connection.
func (l *Lab) Hypervisor() *vms.Hypervisor { return l.hv }

// Close releases the libvirt connection; the lab stays up.
func (l *Lab) Close() error { return l.hv.Close() }

// Dial opens an SSH connection to a guest, pinning its host key, retrying
// until the guest answers or ctx ends.
func (l *Lab) Dial(ctx context.Context, role string) (*provision.Client, error) {
	g, err := l.State.Guest(role)
	if err != nil {
		return nil, err
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(g.HostKey))
	if err != nil {
		return nil, fmt.Errorf("lab %s: %s host key in lab.json: %w", l.Name(), role, err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(g.MgmtPort)
	return provision.WaitReady(ctx, addr, hostKey, l.signer, func(msg string) {
		l.cfg.Log.Debug(msg, "guest", role)
	})
}

// GuestStatus is one guest's entry in Status.
type GuestStatus struct {
	Role     string    `json:"role"`
	Domain   string    `json:"domain"`
	State    vms.State `json:"state"`
	SSH      string    `json:"ssh"`
	LabIP    string    `json:"lab_ip"`
	Console  string    `json:"console"`
	MemoryMB int       `json:"memory_mib"`
}

// LabStatus is what `hostlab status` reports of a lab.
type LabStatus struct {
	Name          string        `json:"name"`
	Accel         vms.Accel     `json:"accel"`
	KernelRelease string        `json:"kernel_release"`
	Dir           string        `json:"dir"`
	Guests        []GuestStatus `json:"guests"`
}

// Status reports the lab's guests as libvirt sees them.
func (l *Lab) Status(ctx context.Context) (LabStatus, error) {
	s := LabStatus{Name: l.Name(), Accel: l.State.Accel, KernelRelease: l.State.KernelRelease, Dir: l.dir}
	for _, g := range l.State.Guests {
		st, err := l.hv.State(ctx, g.Domain)
		if err != nil {
			return s, err
		}
		s.Guests = append(s.Guests, GuestStatus{
			Role: g.Role, Domain: g.Domain, State: st, SSH: "127.0.0.1:" + strconv.Itoa(g.MgmtPort),
			LabIP: g.LabIP(), Console: g.Console, MemoryMB: g.MemoryMiB,
		})
	}
	return s, nil
}

// Labs lists the names of labs with a state folder under home, plus those
// that only libvirt still knows, sorted.
func Labs(ctx context.Context, home string, hv *vms.Hypervisor) ([]string, error) {
	seen := map[string]bool{}
	entries, err := os.ReadDir(filepath.Join(home, "labs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && ValidateName(e.Name()) == nil {
			seen[e.Name()] = true
		}
	}
	if hv != nil {
		doms, err := hv.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, d := range doms {
			if d.Lab != "" {
				seen[d.Lab] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Down removes a lab's domains and folder. It is idempotent: a lab that is
// already gone is not an error.
func Down(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	hv, err := vms.Connect(ctx, cfg.URI)
	if err != nil {
		return err
	}
	defer hv.Close()
	return removeLab(ctx, hv, cfg.Name, cfg.labDir())
}

// DownAll removes every lab hostlab knows of, returning their names.
func DownAll(ctx context.Context, cfg Config) ([]string, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	hv, err := vms.Connect(ctx, cfg.URI)
	if err != nil {
		return nil, err
	}
	defer hv.Close()
	names, err := Labs(ctx, cfg.Home, hv)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, n := range names {
		c := cfg
		c.Name = n
		errs = append(errs, removeLab(ctx, hv, n, c.labDir()))
	}
	// Domains named like hostlab's but without metadata (a probe cut short).
	doms, err := hv.List(ctx)
	if err != nil {
		return names, err
	}
	for _, d := range doms {
		if d.Lab == "" {
			errs = append(errs, hv.Remove(ctx, d.Name))
		}
	}
	return names, errors.Join(errs...)
}

// removeLab removes the lab's domains, then its folder.
func removeLab(ctx context.Context, hv *vms.Hypervisor, name, dir string) error {
	var errs []error
	for _, role := range append([]string{"router"}, Roles...) {
		if err := hv.Remove(ctx, vms.DomainName(name, role)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("down lab %s: %w", name, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("down lab %s: remove %s: %w", name, dir, err)
	}
	return nil
}
