package lab

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/vms"
)

// DefaultHome is where hostlab keeps its cache and labs when HOSTLAB_HOME is
// unset. It is under /var/lib so QEMU, running as libvirt-qemu, can read the
// kernel and initrds.
const DefaultHome = "/var/lib/hostlab"

// DefaultName is the lab used when --lab is not given.
const DefaultName = "default"

// Config says where and how to bring a lab up.
type Config struct {
	// Name is the lab's name (DefaultName if empty).
	Name string
	// URI is the libvirt URI (see vms.ResolveURI).
	URI string
	// Home holds cache/ and labs/ (DefaultHome or HOSTLAB_HOME if empty).
	Home string
	// Kernel picks the guest kernel: a Debian package or a user's own.
	Kernel provision.KernelSpec
	// GuestBinary is the static hostlab binary that becomes each guest's
	// /init (the running executable if empty).
	GuestBinary string
	// MemoryMiB is each guest's RAM (128 if zero).
	MemoryMiB int
	// Accel is "auto" (probe KVM by booting, fall back to TCG), "kvm" or "tcg".
	Accel string
	// Sysctls are applied by each guest's init at boot, by role.
	Sysctls map[string][]string
	// Routed puts a router guest between client and server (two links).
	Routed bool
	// Grace is the init's SIGTERM → SIGKILL grace period at shutdown.
	Grace time.Duration
	// BootTimeout bounds the wait for both guests to answer SSH.
	BootTimeout time.Duration
	// Log receives progress; nil discards it.
	Log *slog.Logger
}

// withDefaults fills the zero fields of c.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if err := ValidateName(c.Name); err != nil {
		return c, err
	}
	c.URI = vms.ResolveURI(c.URI)
	if c.Home == "" {
		c.Home = HomeDir()
	}
	// QEMU is handed paths under Home: they must not depend on the working
	// directory.
	home, err := filepath.Abs(c.Home)
	if err != nil {
		return c, fmt.Errorf("home %s: %w", c.Home, err)
	}
	c.Home = home
	if c.MemoryMiB == 0 {
		c.MemoryMiB = 128
	}
	if c.Accel == "" {
		c.Accel = "auto"
	}
	switch c.Accel {
	case "auto", string(vms.AccelKVM), string(vms.AccelTCG):
	default:
		return c, fmt.Errorf("--accel %q: use auto, kvm or tcg", c.Accel)
	}
	if c.Grace == 0 {
		c.Grace = 5 * time.Second
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = 90 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.GuestBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("find the hostlab binary to use as guest init: %w", err)
		}
		c.GuestBinary = exe
	}
	return c, nil
}

// HomeDir returns HOSTLAB_HOME, or DefaultHome.
func HomeDir() string {
	if h := os.Getenv("HOSTLAB_HOME"); h != "" {
		return h
	}
	return DefaultHome
}

func (c Config) cacheDir() string { return filepath.Join(c.Home, "cache") }

func (c Config) labDir() string { return filepath.Join(c.Home, "labs", c.Name) }
