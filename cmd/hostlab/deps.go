package main

import (
	_ "github.com/creack/pty"
	_ "github.com/digitalocean/go-libvirt"
	_ "github.com/pkg/sftp"
	_ "github.com/spf13/cobra"
	_ "github.com/vishvananda/netlink"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/sys/unix"
	_ "libvirt.org/go/libvirtxml"
)

func main() {}
