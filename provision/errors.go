package provision

import "errors"

// ErrDynamicGuestBinary reports a guest binary that needs a dynamic loader; the guest has no libc, so build it with CGO_ENABLED=0.
var ErrDynamicGuestBinary = errors.New("guest binary is dynamically linked (build it with CGO_ENABLED=0)")

// ErrHostKeyMismatch reports that a guest presented an SSH host key other than the one it was provisioned with.
var ErrHostKeyMismatch = errors.New("ssh host key mismatch")

// ErrModuleNotFound reports a kernel module that is neither in the modules tree nor built into the kernel.
var ErrModuleNotFound = errors.New("kernel module not found")

// ErrNoAptLists reports that apt knows no packages, so the kernel package cannot be resolved; run apt-get update.
var ErrNoAptLists = errors.New("apt package lists are empty (run apt-get update)")
