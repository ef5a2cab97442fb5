package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

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
	// Runnable, so that an unknown verb reaches unknownVerb (cobra shows
	// the help of a command that is not, and exits 0).
	root.Args = unknownVerb
	root.SuggestionsMinimumDistance = 2
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see `%s --help`)", err, cmd.CommandPath())
	})
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.check() }
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

// unknownVerb refuses an argument that names no verb of a command with
// verbs, in one line, with the nearest verbs.
func unknownVerb(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %s: see `%s --help`", args[0], cmd.CommandPath(), cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += " (did you mean " + strings.Join(s, " or ") + "?)"
	}
	return fmt.Errorf("%s", msg)
}

// check refuses a --home that is not a folder before any verb runs, and
// makes --home absolute: QEMU is handed paths under it. (--connect is
// checked where it is used, vms.Connect, after the verb's own flags.)
func (g *globals) check() error {
	if g.home != "" {
		abs, err := filepath.Abs(g.home)
		if err != nil {
			return fmt.Errorf("--home %s: %w", g.home, err)
		}
		if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
			return fmt.Errorf("--home %s: not a folder: give a folder (it is created when missing)", g.home)
		}
		g.home = abs
	}
	return nil
}
