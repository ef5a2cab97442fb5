package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/hostlab/hostlab/vms"
)

// stateVersion is the version of lab.json's schema.
const stateVersion = 2

// Roles of the guests in a two-host lab, in boot order.
const (
	RoleClient = "client"
	RoleServer = "server"
)

// RoleRouter is the third guest of a routed lab, between client and server.
const RoleRouter = "router"

// Roles lists the two ends of every lab; a routed lab adds RoleRouter.
var Roles = []string{RoleClient, RoleServer}

// ErrNoLab reports that a lab has no state folder: it was never brought up
// or was taken down.
var ErrNoLab = errors.New("no such lab")

// ErrLabExists reports a second `up` of a lab that is already up.
var ErrLabExists = errors.New("lab already exists")

var labName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

// ValidateName checks a lab name: lowercase letters, digits and '-', at most
// 31 characters, so domain names and paths stay simple.
func ValidateName(name string) error {
	if !labName.MatchString(name) {
		return fmt.Errorf("lab name %q is not valid: use 1-31 lowercase letters, digits or '-', starting with a letter or digit", name)
	}
	return nil
}

// ValidateRole checks a guest role name.
func ValidateRole(role string) error {
	for _, r := range append(Roles, RoleRouter) {
		if r == role {
			return nil
		}
	}
	return fmt.Errorf("unknown guest %q: use client or server (or router in a routed lab)", role)
}

// State is a lab's persisted description (lab.json).
type State struct {
	Version       int       `json:"version"`
	Name          string    `json:"name"`
	URI           string    `json:"uri"`
	Created       time.Time `json:"created"`
	Accel         vms.Accel `json:"accel"`
	KernelRelease string    `json:"kernel_release"`
	ImageKey      string    `json:"image_key"`
	// Routed says the lab has a router guest between client and server.
	Routed bool `json:"routed,omitempty"`
	// Grace is the guest init's SIGTERM → SIGKILL grace at shutdown.
	Grace  time.Duration `json:"grace_ns"`
	Guests []GuestState  `json:"guests"`
}

// GuestState is what hostlab knows of one guest of a lab.
type GuestState struct {
	Role      string      `json:"role"`
	Domain    string      `json:"domain"`
	MgmtPort  int         `json:"mgmt_port"`
	MgmtMAC   string      `json:"mgmt_mac"`
	Links     []LinkState `json:"links"`
	HostKey   string      `json:"host_key"`
	Initrd    string      `json:"initrd"`
	Console   string      `json:"console"`
	MemoryMiB int         `json:"memory_mib"`
}

// LinkState is one of a guest's lab NICs.
type LinkState struct {
	MAC     string `json:"mac"`
	IP      string `json:"ip"`
	Prefix  int    `json:"prefix"`
	Gateway string `json:"gateway,omitempty"`
	// Pcap is the file QEMU writes every frame of this NIC to.
	Pcap string `json:"pcap"`
	// LocalPort and RemotePort are the link's UDP ports on 127.0.0.1.
	LocalPort  int `json:"local_port"`
	RemotePort int `json:"remote_port"`
}

// LabIP is the guest's address on its first lab link: the address the
// client connects to on the server.
func (g GuestState) LabIP() string {
	if len(g.Links) == 0 {
		return ""
	}
	return g.Links[0].IP
}

// Guest returns the state of the guest with the given role.
func (s *State) Guest(role string) (*GuestState, error) {
	for i := range s.Guests {
		if s.Guests[i].Role == role {
			return &s.Guests[i], nil
		}
	}
	return nil, fmt.Errorf("lab %s has no %s guest", s.Name, role)
}

func statePath(dir string) string { return filepath.Join(dir, "lab.json") }

func readState(dir, name string) (*State, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %s: %w (bring it up with `hostlab up --lab %s`)", name, ErrNoLab, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read lab %s state: %w", name, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("lab %s: state file %s is corrupt (%v): run `hostlab down --lab %s` and bring it up again", name, statePath(dir), err, name)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("lab %s: state version %d, this hostlab reads %d: run `hostlab down --lab %s`", name, s.Version, stateVersion, name)
	}
	return &s, nil
}

func writeState(dir string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode lab state: %w", err)
	}
	tmp := statePath(dir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	if err := os.Rename(tmp, statePath(dir)); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}
