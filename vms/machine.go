package vms

import (
	"encoding/xml"
	"fmt"
	"net"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// Accel is the QEMU accelerator a domain runs under.
type Accel string

// The accelerators hostlab uses.
const (
	AccelKVM Accel = "kvm"
	AccelTCG Accel = "tcg"
)

// MetadataNamespace is the XML namespace of hostlab's domain metadata.
const MetadataNamespace = "https://github.com/hostlab/hostlab/xmlns/lab/1"

// DomainPrefix starts the name of every domain hostlab creates.
const DomainPrefix = "hostlab-"

// mgmtPCIAddr is the PCI slot of the management NIC, fixed so the guest's
// interface order never depends on libvirt's allocation.
const mgmtPCIAddr = "0x10"

// Link is one end of a point-to-point lab link: a virtio NIC whose frames
// travel as UDP datagrams between two ports on the host's loopback.
type Link struct {
	// MAC is the guest NIC's hardware address.
	MAC string
	// LocalPort is the UDP port this end receives on.
	LocalPort int
	// RemotePort is the UDP port of the other end.
	RemotePort int
}

// Machine describes one lab guest booted directly from a kernel and initrd.
type Machine struct {
	// Name is the libvirt domain name, hostlab-<lab>-<role>.
	Name string
	// Lab and Role identify the guest in hostlab's metadata.
	Lab, Role string
	// Kernel, Initrd and Cmdline are the direct-boot inputs.
	Kernel, Initrd, Cmdline string
	// MemoryMiB is the guest's RAM.
	MemoryMiB int
	// VCPUs is the number of virtual CPUs.
	VCPUs int
	// Accel picks KVM or TCG.
	Accel Accel
	// Console is the file the serial console is written to.
	Console string
	// MgmtMAC is the management NIC's hardware address.
	MgmtMAC string
	// MgmtPort is the host port on 127.0.0.1 forwarded to the guest's SSH port.
	MgmtPort int
	// Links are the guest's lab links.
	Links []Link
	// Pcaps, when set, names a pcap file per lab link (same index) that
	// QEMU's filter-dump writes every frame to.
	Pcaps []string
}

// DomainName returns the libvirt name of a lab guest.
func DomainName(lab, role string) string {
	return DomainPrefix + lab + "-" + role
}

// Validate reports the first thing wrong with m.
func (m Machine) Validate() error {
	switch {
	case m.Name == "" || m.Lab == "" || m.Role == "":
		return fmt.Errorf("machine needs a name, lab and role")
	case m.Kernel == "" || m.Initrd == "":
		return fmt.Errorf("machine %s needs a kernel and an initrd", m.Name)
	case m.MemoryMiB < 64:
		return fmt.Errorf("machine %s: memory %d MiB is below 64 MiB", m.Name, m.MemoryMiB)
	case m.Accel != AccelKVM && m.Accel != AccelTCG:
		return fmt.Errorf("machine %s: accelerator %q is not kvm or tcg", m.Name, m.Accel)
	case m.MgmtPort <= 0 || m.MgmtPort > 65535:
		return fmt.Errorf("machine %s: management port %d out of range", m.Name, m.MgmtPort)
	case len(m.Pcaps) != 0 && len(m.Pcaps) != len(m.Links):
		return fmt.Errorf("machine %s: %d pcap files for %d links", m.Name, len(m.Pcaps), len(m.Links))
	}
	for _, mac := range append([]string{m.MgmtMAC}, linkMACs(m.Links)...) {
		if _, err := net.ParseMAC(mac); err != nil {
			return fmt.Errorf("machine %s: bad MAC %q: %w", m.Name, mac, err)
		}
	}
	return nil
}

func linkMACs(links []Link) []string {
	macs := make([]string, len(links))
	for i, l := range links {
		macs[i] = l.MAC
	}
	return macs
}

// metadata is hostlab's element inside <metadata>.
type metadata struct {
	XMLName xml.Name `xml:"hostlab"`
	Xmlns   string   `xml:"xmlns,attr"`
	Lab     string   `xml:"lab,attr"`
	Role    string   `xml:"role,attr"`
}

// DomainXML renders m as libvirt domain XML.
func (m Machine) DomainXML() (string, error) {
	if err := m.Validate(); err != nil {
		return "", err
	}
	meta, err := xml.Marshal(metadata{Xmlns: MetadataNamespace, Lab: m.Lab, Role: m.Role})
	if err != nil {
		return "", fmt.Errorf("marshal metadata: %w", err)
	}
	vcpus := m.VCPUs
	if vcpus < 1 {
		vcpus = 1
	}
	dom := &libvirtxml.Domain{
		Type:        domainType(m.Accel),
		Name:        m.Name,
		Description: fmt.Sprintf("hostlab lab %q, %s guest", m.Lab, m.Role),
		Metadata:    &libvirtxml.DomainMetadata{XML: string(meta)},
		Memory:      &libvirtxml.DomainMemory{Value: uint(m.MemoryMiB), Unit: "MiB"},
		VCPU:        &libvirtxml.DomainVCPU{Value: uint(vcpus)},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			Kernel:  m.Kernel,
			Initrd:  m.Initrd,
			Cmdline: m.Cmdline,
		},
		Features:   features(m.Accel),
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{
					File: &libvirtxml.DomainChardevSourceFile{Path: m.Console, Append: "on"},
				},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
			// No USB: the PIIX3 UHCI's early hand-off alone costs the
			// kernel ~0.35 s under TCG.
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
		},
		QEMUCommandline: &libvirtxml.DomainQEMUCommandline{Args: m.qemuArgs()},
	}
	for i, l := range m.Links {
		dom.Devices.Interfaces = append(dom.Devices.Interfaces, libvirtxml.DomainInterface{
			MAC:   &libvirtxml.DomainInterfaceMAC{Address: l.MAC},
			Model: &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			Alias: &libvirtxml.DomainAlias{Name: linkAlias(i)},
			ROM:   &libvirtxml.DomainROM{Enabled: "no"},
			Source: &libvirtxml.DomainInterfaceSource{UDP: &libvirtxml.DomainInterfaceSourceUDP{
				Address: "127.0.0.1",
				Port:    uint(l.RemotePort),
				Local:   &libvirtxml.DomainInterfaceSourceLocal{Address: "127.0.0.1", Port: uint(l.LocalPort)},
			}},
		})
	}
	out, err := dom.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal domain %s: %w", m.Name, err)
	}
	return out, nil
}

// linkAlias is the libvirt alias of lab link i; libvirt requires user
// aliases to start with "ua-". QEMU names the NIC's netdev "host" + alias.
func linkAlias(i int) string { return "ua-lab" + strconv.Itoa(i) }

// tcgCacheMiB bounds QEMU's TCG translation cache (QEMU 7.2 defaults to
// 1 GiB of address space), which dominates a small guest's host memory.
const tcgCacheMiB = 64

func features(a Accel) *libvirtxml.DomainFeatureList {
	f := &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}}
	if a == AccelTCG {
		f.TCG = &libvirtxml.DomainFeatureTCG{TBCache: &libvirtxml.DomainFeatureTCGTBCache{Unit: "MiB", Size: tcgCacheMiB}}
	}
	return f
}

func domainType(a Accel) string {
	if a == AccelKVM {
		return "kvm"
	}
	return "qemu"
}

// qemuArgs are the pass-through arguments: the management NIC (libvirt 9.0
// cannot express a user-mode NIC with a host port forward) and pcap dumps.
//
// The management NIC is QEMU user networking with restrict=on: the guest
// reaches nothing through it — not the host (10.0.2.2 would otherwise be the
// host's loopback), not its networks, not slirp's DNS — while the host port
// forward to the guest's SSH, bound to 127.0.0.1, still works.
func (m Machine) qemuArgs() []libvirtxml.DomainQEMUCommandlineArg {
	args := []string{
		"-netdev", fmt.Sprintf("user,id=mgmt0,net=10.0.2.0/24,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22", m.MgmtPort),
		"-device", fmt.Sprintf("virtio-net-pci,netdev=mgmt0,mac=%s,addr=%s,romfile=", m.MgmtMAC, mgmtPCIAddr),
	}
	for i, p := range m.Pcaps {
		args = append(args, "-object",
			fmt.Sprintf("filter-dump,id=dump%d,netdev=host%s,file=%s", i, linkAlias(i), p))
	}
	out := make([]libvirtxml.DomainQEMUCommandlineArg, len(args))
	for i, a := range args {
		out[i] = libvirtxml.DomainQEMUCommandlineArg{Value: a}
	}
	return out
}

// parseMetadata extracts lab and role from a domain's XML description.
func parseMetadata(domainXML string) (lab, role string, ok bool) {
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(domainXML); err != nil || dom.Metadata == nil {
		return "", "", false
	}
	var md metadata
	if err := xml.Unmarshal([]byte(strings.TrimSpace(dom.Metadata.XML)), &md); err != nil {
		return "", "", false
	}
	if md.Lab == "" {
		return "", "", false
	}
	return md.Lab, md.Role, true
}
