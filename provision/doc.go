// Package provision builds what a hostlab guest boots from and talks to the
// guest once it runs.
//
// It has three parts:
//
//   - Kernels: FetchKernel downloads a Debian kernel package with apt-get,
//     extracts an uncompressed vmlinux (PVH entry, boots ~3x faster under QEMU
//     than the compressed vmlinuz) and a pruned modules tree, and caches both
//     under cacheDir/kernels/<release>/. A bring-your-own kernel (KernelSpec
//     Image and ModulesDir) is validated and its image copied into the cache.
//   - Images: BuildImage writes a reproducible newc initramfs holding the
//     static guest binary as /init, busybox, and the kernel modules the guest
//     needs in dependency order; images are cached by a content key under
//     cacheDir/images/<key>/. WriteGuestInitrd appends a per-guest archive with
//     the guest's SSH host key and authorized keys.
//   - Access: Dial and WaitReady open an SSH connection to a guest (host key
//     pinned, user root); Client runs commands, starts long-running ones with
//     live output (Start, Process, LineWriter), uploads files over SFTP and
//     opens interactive shells. Deploy puts static binaries and scripts into
//     a guest, checksum-verified, skipping identical files.
//
// Everything written to the cache is world-readable (directories 0755, files
// 0644) because QEMU runs as an unprivileged user (libvirt-qemu) and must read
// the kernel and initrd; the cache directory's parents must be traversable by
// that user too. Cache entries are staged in a temporary directory and
// renamed into place, so an interrupted build never leaves a partial entry.
package provision
