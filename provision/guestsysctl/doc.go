// Package guestsysctl keeps a guest's sysctls at a declared baseline: the
// guest init snapshots the baseline right after applying its boot-time
// sysctls (SaveBaseline), and the multi-call hostlab binary, run as
// "hostlab-sysctl" ([Name]), applies a run's overrides on top of it and
// restores it afterwards ([Main]). It is built with CGO_ENABLED=0 on the
// standard library only.
//
// # The baseline
//
// The baseline is a JSON object of dotted keys and values,
// {"net.ipv4.tcp_retries2":"15",…}, in /run/hostlab/sysctl.baseline
// ([BaselinePath]). It holds every file under /proc/sys/net that is both
// readable and writable (write-only files such as net.ipv4.route.flush, and
// files that fail to read, are left out), the boot-time keys outside
// /proc/sys/net, and any other key the first time hostlab-sysctl apply writes
// it (with the value it had then). The init takes the snapshot in the
// background (a second or two under TCG, off the boot's critical path);
// hostlab-sysctl waits up to a minute for it to appear. Values are kept in normalised form: the
// whitespace-separated fields joined by one space, so "4096\t131072\t6291456"
// as the kernel prints tcp_rmem is "4096 131072 6291456".
//
// # hostlab-sysctl
//
//	hostlab-sysctl apply    < {"net.ipv4.tcp_retries2":"7",…}
//	hostlab-sysctl restore
//	hostlab-sysctl get KEY…
//
// apply reads a JSON object of keys and values on stdin (values are data:
// spaces and any other characters reach the kernel as given, normalised),
// checks every key, restores every key that differs from the baseline, writes
// the given keys, reads them back and prints an [ApplyReport]. restore
// restores every key that differs from the baseline and prints a
// [RestoreReport]. get prints the current values of the given keys as a JSON
// object, leaving out keys that do not exist. The exit status is 0 on
// success, 1 when a key cannot be read, written or restored (the message on
// stderr says which), and 2 for a usage error or a malformed key.
package guestsysctl
