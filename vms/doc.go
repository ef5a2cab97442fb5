// Package vms defines, starts and faults the lab's virtual machines through
// libvirt.
//
// A Machine describes one guest: a kernel and initrd booted directly, a serial
// console written to a file, a management NIC (QEMU user networking with a
// port forward bound to 127.0.0.1) and any number of lab links. A lab link is a
// point-to-point QEMU UDP socket pair on the host's loopback: it carries only
// the lab's traffic, needs no bridge, and extends to a third "router" guest by
// giving it two links.
//
// Hypervisor wraps a go-libvirt connection behind a narrow, unexported
// interface (libvirtAPI) that lists only the calls hostlab makes, so the lab's
// logic is unit-tested against a fake. go-libvirt calls take no context:
// Hypervisor enforces the caller's deadline around each one.
//
// Fault verbs are separate and explicit: Pause and Resume (libvirt suspend
// and resume: the vCPUs stop, the NICs send nothing), PowerOff (libvirt
// destroy, a true power cut), CutPower (Pause, then PowerOff, returning the
// pause window that pins when the guest fell silent), Reset (hard reset),
// Shutdown (ACPI power button). None falls back to another.
package vms
