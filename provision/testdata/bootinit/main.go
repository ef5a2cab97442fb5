// Command bootinit is a minimal /init for TestBootQEMU: it loads the image's
// modules, reports what it sees on the console and powers off.
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	fmt.Println("HOSTLAB-INIT start")
	order, err := os.ReadFile("/lib/modules/hostlab/load-order")
	fmt.Printf("load-order err=%v\n", err)
	for _, m := range strings.Fields(string(order)) {
		f, err := os.Open("/lib/modules/hostlab/" + m)
		if err != nil {
			fmt.Println("open", m, err)
			continue
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		fmt.Printf("load %s: %v\n", m, err)
		f.Close()
	}
	unix.Mount("sysfs", "/sys", "sysfs", 0, "")
	ents, _ := os.ReadDir("/sys/class/net")
	for _, e := range ents {
		fmt.Println("netdev", e.Name())
	}
	ak, err := os.ReadFile("/etc/hostlab/authorized_keys")
	fmt.Printf("authorized_keys %d bytes err=%v\n", len(ak), err)
	fi, err := os.Stat("/etc/hostlab/ssh_host_ed25519_key")
	if err == nil {
		fmt.Printf("hostkey mode %v\n", fi.Mode())
	}
	l, _ := os.Readlink("/bin/sh")
	fmt.Println("bin/sh ->", l)
	fmt.Println("HOSTLAB-INIT-OK")
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
