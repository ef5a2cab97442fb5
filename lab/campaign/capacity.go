package campaign

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// qemuOverheadMiB is a guest's QEMU process beyond its RAM (its resident
// set is about 300 MiB for a 128 MiB guest under TCG, which bounds it).
const qemuOverheadMiB = 300

// CheckParallel refuses a parallelism the machine cannot hold: more than
// MaxParallel labs, or more than the available memory holds at memoryMiB
// per guest plus QEMU's overhead, with three guests per lab when the
// campaign needs a router, two otherwise.
func CheckParallel(n, memoryMiB int, routed bool, availMiB int) error {
	if n < 1 {
		return fmt.Errorf("--parallel %d: must be at least 1", n)
	}
	if n > MaxParallel {
		return fmt.Errorf("--parallel %d: at most %d labs run at once", n, MaxParallel)
	}
	guests := 2
	if routed {
		guests = 3
	}
	need := n * guests * (memoryMiB + qemuOverheadMiB)
	if availMiB > 0 && need > availMiB {
		fit := availMiB / (guests * (memoryMiB + qemuOverheadMiB))
		return fmt.Errorf("--parallel %d: %d labs of %d guests need about %d MiB (%d MiB RAM + %d MiB QEMU each) and %d MiB are available: give --parallel %d or less",
			n, n, guests, need, memoryMiB, qemuOverheadMiB, availMiB, max(fit, 1))
	}
	return nil
}

// AvailableMiB reads MemAvailable from /proc/meminfo (0 when unknown).
func AvailableMiB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// NeedsRouter reports whether a plan has cells that need a routed lab.
func (p *Plan) NeedsRouter() bool {
	for _, c := range p.Cells {
		if c.Routed {
			return true
		}
	}
	return false
}
