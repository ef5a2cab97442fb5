// Package guestinit is the PID 1 of a hostlab guest: it mounts the pseudo
// file systems, loads the kernel modules baked into the initramfs, applies the
// hostlab.* kernel command-line parameters (hostname, network, sysctls), reaps
// orphans, serves SSH (exec, shell with a pty, sftp, signals) and runs the
// classic Unix shutdown sequence (SIGTERM to all, grace, SIGKILL, sync,
// reboot(2)) on a signal, on shutdown/poweroff/reboot/halt or on the ACPI power
// button.
//
// The hostlab binary is multi-call: when IsGuestInvocation reports true, the
// caller hands control to Main, which either becomes init (as PID 1) or acts as
// the shutdown, poweroff, reboot or halt command and signals PID 1 the way
// busybox does (halt SIGUSR1, poweroff SIGUSR2, reboot SIGTERM).
//
// The SSH server (SSHServer) and the process table (ProcTable) also run outside
// a guest, so they are tested on the host over loopback.
package guestinit
