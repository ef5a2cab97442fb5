package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab"
)

func newBenchCmd(g *globals) *cobra.Command {
	bench := &cobra.Command{Use: "bench", Short: "Measure hostlab itself", Args: unknownVerb, SuggestionsMinimumDistance: 2,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	f := &upFlags{}
	var runs int
	var cold bool
	up := &cobra.Command{
		Use:   "up",
		Short: "Time from `up` to both guests answering SSH (cold and warm cache), and each guest's RAM",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runs < 1 {
				return fmt.Errorf("--runs %d: must be at least 1", runs)
			}
			if err := checkDurations(cmd); err != nil {
				return err
			}
			cfg, err := f.config(g)
			if err != nil {
				return err
			}
			cfg.Name = "bench"
			ctx := cmd.Context()
			if cold {
				home, err := os.MkdirTemp("", "hostlab-bench-")
				if err != nil {
					return err
				}
				if err := os.Chmod(home, 0o755); err != nil {
					return err
				}
				defer os.RemoveAll(home)
				c := cfg
				c.Home = home
				fmt.Printf("cold cache (%s: kernel fetch, image build, accelerator probe)\n", home)
				if err := benchOnce(ctx, c, "cold"); err != nil {
					return err
				}
			}
			for i := 1; i <= runs; i++ {
				if err := benchOnce(ctx, cfg, fmt.Sprintf("warm %d/%d", i, runs)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.register(up, true)
	up.Flags().IntVar(&runs, "runs", 3, "warm runs")
	up.Flags().BoolVar(&cold, "cold", true, "also time one run with an empty cache")
	bench.AddCommand(up, newBenchVerdictsCmd(g), newBenchSoakCmd(g))
	return bench
}

// benchOnce brings the bench lab up, prints its figures and takes it down.
func benchOnce(ctx context.Context, cfg lab.Config, label string) error {
	_ = lab.Down(ctx, cfg)
	t0 := time.Now()
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		return err
	}
	total := time.Since(t0)
	defer func() {
		l.Close()
		if err := lab.Down(context.Background(), cfg); err != nil {
			fmt.Fprintln(os.Stderr, "hostlab: bench: "+err.Error())
		}
	}()
	fmt.Printf("%-9s up→both ssh %6.2fs (accel %s)", label, total.Seconds(), l.State.Accel)
	for _, role := range lab.Roles {
		gs, _ := l.State.Guest(role)
		used, err := guestUsedMiB(ctx, l, role)
		if err != nil {
			return err
		}
		fmt.Printf("  %s: boot→ssh %.2fs, RAM %d MiB configured, %d MiB used in guest, QEMU RSS %s",
			role, l.BootTimes[role].Seconds(), gs.MemoryMiB, used, qemuRSS(gs.Domain))
	}
	fmt.Println()
	return nil
}

// guestUsedMiB is MemTotal − MemAvailable inside the guest.
func guestUsedMiB(ctx context.Context, l *lab.Lab, role string) (int, error) {
	c, err := l.Dial(ctx, role)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	out, err := c.Output(ctx, "cat /proc/meminfo")
	if err != nil {
		return 0, err
	}
	kb := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 {
			n, _ := strconv.Atoi(f[1])
			kb[strings.TrimSuffix(f[0], ":")] = n
		}
	}
	return (kb["MemTotal"] - kb["MemAvailable"]) / 1024, nil
}

// qemuRSS reads the resident set of a local domain's QEMU process.
func qemuRSS(domain string) string {
	b, err := os.ReadFile(filepath.Join("/run/libvirt/qemu", domain+".pid"))
	if err != nil {
		return "n/a"
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/status")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return fmt.Sprintf("%d MiB", n/1024)
		}
	}
	return "n/a"
}
