package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab"
)

// globals are the flags every verb shares.
type globals struct {
	connect string
	home    string
	verbose bool
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "hostlab",
		Short: "What does my client actually see when the server's host dies? Real VMs, real kernels, measured.",
		Long: `hostlab boots a client and a server VM through libvirt on their own lab link,
runs an echo pair between them, does something real to the server (kill, power-off,
crash and reboot, shutdown) and measures how and when the client found out.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.connect, "connect", "c", "", "libvirt URI (default: $LIBVIRT_DEFAULT_URI, else qemu:///system)")
	root.PersistentFlags().StringVar(&g.home, "home", "", "folder for hostlab's cache and labs (default: $HOSTLAB_HOME, else "+lab.DefaultHome+")")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log every step")
	root.AddCommand(
		newSetupCmd(g), newDoctorCmd(g),
		newUpCmd(g), newStatusCmd(g), newExecCmd(g), newSSHCmd(g), newDownCmd(g),
		newBenchCmd(g), newRunCmd(g), newScenariosCmd(), newDeployCmd(g), newVerdictCmd(), newCampaignCmd(g),
	)
	return root
}

// logger returns the progress logger: stderr, info level unless -v.
func (g *globals) logger() *slog.Logger {
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}))
}

// dropTime keeps progress lines short; results carry their own timestamps.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// labConfig is the lab configuration the global flags describe.
func (g *globals) labConfig(name string) lab.Config {
	return lab.Config{Name: name, URI: g.connect, Home: g.home, Log: g.logger()}
}
