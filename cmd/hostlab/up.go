package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/vms"
)

// upFlags configure a lab's guests.
type upFlags struct {
	name          string
	kernelPackage string
	kernelImage   string
	kernelModules string
	memory        int
	accel         string
	grace         time.Duration
	sysctls       []string
	routed        bool
}

// register adds the flags; boot sysctls only where asked (hostlab run
// applies its --sysctl at run time instead).
func (f *upFlags) register(cmd *cobra.Command, bootSysctls bool) {
	cmd.Flags().StringVar(&f.kernelPackage, "kernel-package", "", "Debian kernel package for the guests (default: the one linux-image-amd64 depends on)")
	cmd.Flags().StringVar(&f.kernelImage, "kernel", "", "your own guest kernel (vmlinux or bzImage); needs --modules")
	cmd.Flags().StringVar(&f.kernelModules, "modules", "", "modules tree of --kernel (a lib/modules/RELEASE folder)")
	cmd.Flags().IntVar(&f.memory, "memory", 128, "RAM per guest in MiB")
	cmd.Flags().StringVar(&f.accel, "accel", "auto", "accelerator: auto (probe KVM by booting, else TCG), kvm or tcg")
	cmd.Flags().DurationVar(&f.grace, "grace", 5*time.Second, "guest init's grace between SIGTERM and SIGKILL at shutdown")
	cmd.Flags().BoolVar(&f.routed, "routed", false, "put a router VM between client and server (two lab links; the unreachable scenario needs it)")
	if bootSysctls {
		cmd.Flags().StringArrayVar(&f.sysctls, "sysctl", nil, "ROLE:KEY=VALUE applied at guest boot, e.g. client:net.ipv4.tcp_retries2=5 (repeatable)")
	}
}

// config turns the flags into a lab configuration.
func (f *upFlags) config(g *globals) (lab.Config, error) {
	cfg := g.labConfig(f.name)
	cfg.Kernel = provision.KernelSpec{Package: f.kernelPackage, Image: f.kernelImage, ModulesDir: f.kernelModules}
	cfg.MemoryMiB, cfg.Accel, cfg.Grace, cfg.Routed = f.memory, f.accel, f.grace, f.routed
	if f.memory < 64 {
		// 0 would mean the default to lab.Up: refuse it here.
		return cfg, fmt.Errorf("--memory %d: a guest needs at least 64 MiB: give e.g. --memory 128 (the default)", f.memory)
	}
	cfg.Sysctls = map[string][]string{}
	for _, s := range f.sysctls {
		role, kv, err := lab.ParseBootSysctl(s)
		if err != nil {
			return cfg, err
		}
		cfg.Sysctls[role] = append(cfg.Sysctls[role], kv)
	}
	return cfg, nil
}

func newUpCmd(g *globals) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Boot a lab: a client and a server VM joined by a lab link",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDurations(cmd); err != nil {
				return err
			}
			cfg, err := f.config(g)
			if err != nil {
				return err
			}
			t0 := time.Now()
			l, err := lab.Up(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer l.Close()
			fmt.Printf("lab %s is up in %s (%s, kernel %s); state in %s\n", l.Name(),
				time.Since(t0).Round(10*time.Millisecond), l.State.Accel, l.State.KernelRelease, l.Dir())
			for _, gs := range l.State.Guests {
				fmt.Printf("  %-6s %s  lab %s  ssh 127.0.0.1:%d\n", gs.Role, gs.Domain, gs.LabIP(), gs.MgmtPort)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.name, "lab", lab.DefaultName, "lab name")
	f.register(cmd, true)
	return cmd
}

func newDownCmd(g *globals) *cobra.Command {
	var name string
	var all bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove a lab's VMs, files and processes (idempotent)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all {
				if cmd.Flags().Changed("lab") {
					return fmt.Errorf("give either --lab or --all, not both")
				}
				names, err := lab.DownAll(cmd.Context(), g.labConfig(""))
				if err != nil {
					return err
				}
				fmt.Printf("removed %d lab(s) %s\n", len(names), strings.Join(names, " "))
				return nil
			}
			if err := lab.Down(cmd.Context(), g.labConfig(name)); err != nil {
				return err
			}
			fmt.Printf("lab %s is down\n", name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "lab", lab.DefaultName, "lab name")
	cmd.Flags().BoolVar(&all, "all", false, "remove every hostlab lab on this hypervisor")
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show labs and their guests' states",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg := g.labConfig("")
			hv, err := vms.Connect(ctx, vms.ResolveURI(cfg.URI))
			if err != nil {
				return err
			}
			defer hv.Close()
			names, err := lab.Labs(ctx, homeOf(g), hv)
			if err != nil {
				return err
			}
			all := []lab.LabStatus{}
			for _, n := range names {
				l, err := lab.Open(ctx, g.labConfig(n))
				if err != nil {
					all = append(all, lab.LabStatus{Name: n, Dir: "(" + err.Error() + ")"})
					continue
				}
				s, err := l.Status(ctx)
				l.Close()
				if err != nil {
					return err
				}
				all = append(all, s)
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			if len(all) == 0 {
				fmt.Println("no labs; bring one up with `hostlab up`")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LAB\tGUEST\tDOMAIN\tSTATE\tLAB IP\tSSH\tACCEL\tKERNEL")
			for _, s := range all {
				if len(s.Guests) == 0 {
					fmt.Fprintf(tw, "%s\t-\t-\tbroken %s\t\t\t\t\n", s.Name, s.Dir)
				}
				for _, gs := range s.Guests {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, gs.Role, gs.Domain, gs.State, gs.LabIP, gs.SSH, s.Accel, s.KernelRelease)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
