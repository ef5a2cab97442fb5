package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/echo/classic"
	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/provision"
)

func newDeployCmd(g *globals) *cobra.Command {
	var (
		name, to  string
		fileFlags []string
		noClassic bool
	)
	cmd := &cobra.Command{
		Use:   "deploy [--lab NAME] [--to client|server|both] [--file LOCAL[:REMOTE]]... [--no-classic]",
		Short: "Build the classic C echo pair and copy it, and any --file, into the guests",
		Long: `deploy builds the classic C echo pair (static, with $CC or cc) and uploads it, with
each --file, to ` + provision.GuestBinDir + ` in the guests. Files already there with the same
sha256 are left alone. Executables must be static x86-64 ELF binaries or #! scripts.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := parseDeployFlags(to, fileFlags, noClassic)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			l, err := lab.Open(ctx, g.labConfig(name))
			if err != nil {
				return err
			}
			defer l.Close()
			files, err := deployFiles(ctx, g, plan)
			if err != nil {
				return err
			}
			width := 0
			for _, f := range files {
				width = max(width, len(f.Remote))
			}
			for _, role := range plan.roles {
				c, err := l.Dial(ctx, role)
				if err != nil {
					return fmt.Errorf("connect to %s of lab %s: %w", role, name, err)
				}
				deployed, err := provision.Deploy(ctx, c, files)
				c.Close()
				for _, d := range deployed {
					fmt.Fprintln(cmd.OutOrStdout(), deployLine(role, d, width))
				}
				if err != nil {
					return fmt.Errorf("%s: %w", role, err)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "lab", lab.DefaultName, "lab name")
	cmd.Flags().StringVar(&to, "to", "both", "guests to deploy to: client, server or both")
	cmd.Flags().StringArrayVar(&fileFlags, "file", nil, "LOCAL[:REMOTE] to deploy too; REMOTE defaults to "+provision.GuestBinDir+"/BASENAME, a REMOTE ending in / is a folder (repeatable)")
	cmd.Flags().BoolVar(&noClassic, "no-classic", false, "don't build and deploy the classic C echo pair")
	return cmd
}

// deployPlan is what the flags of `hostlab deploy` ask for.
type deployPlan struct {
	roles   []string
	classic bool
	files   []provision.File
}

// parseDeployFlags checks deploy's flags and turns them into a plan.
func parseDeployFlags(to string, fileFlags []string, noClassic bool) (deployPlan, error) {
	p := deployPlan{classic: !noClassic}
	switch to {
	case "both":
		p.roles = lab.Roles
	case lab.RoleClient, lab.RoleServer:
		p.roles = []string{to}
	default:
		return p, fmt.Errorf("--to %q: want client, server or both", to)
	}
	seen := map[string]string{}
	if p.classic {
		for _, b := range []string{classic.ServerBinary, classic.ClientBinary} {
			seen[path.Join(provision.GuestBinDir, b)] = "the classic echo pair"
		}
	}
	for _, s := range fileFlags {
		f, err := parseDeployFile(s)
		if err != nil {
			return p, err
		}
		if prev, ok := seen[f.Remote]; ok {
			return p, fmt.Errorf("--file %q: %s is already deployed from %s", s, f.Remote, prev)
		}
		seen[f.Remote] = f.Local
		p.files = append(p.files, f)
	}
	if !p.classic && len(p.files) == 0 {
		return p, fmt.Errorf("nothing to deploy: --no-classic needs at least one --file")
	}
	return p, nil
}

// parseDeployFile parses LOCAL[:REMOTE]; REMOTE defaults to GuestBinDir and
// one ending in "/" is a folder that keeps LOCAL's base name.
func parseDeployFile(s string) (provision.File, error) {
	local, remote, _ := strings.Cut(s, ":")
	if local == "" {
		return provision.File{}, fmt.Errorf("--file %q: want LOCAL[:REMOTE], e.g. ./prog:/opt/hostlab/bin/prog", s)
	}
	base := filepath.Base(local)
	switch {
	case remote == "":
		remote = path.Join(provision.GuestBinDir, base)
	case !path.IsAbs(remote):
		return provision.File{}, fmt.Errorf("--file %q: guest path %q is not absolute", s, remote)
	case strings.HasSuffix(remote, "/"):
		remote = path.Join(remote, base)
	}
	return provision.File{Local: local, Remote: path.Clean(remote)}, nil
}

// deployFiles builds the classic pair if the plan wants it and returns every
// file to deploy.
func deployFiles(ctx context.Context, g *globals, p deployPlan) ([]provision.File, error) {
	if !p.classic {
		return p.files, nil
	}
	out := filepath.Join(homeOf(g), "cache", "classic")
	server, client, err := classic.Build(ctx, os.Getenv("CC"), out)
	if err != nil {
		return nil, fmt.Errorf("build classic echo pair (or skip it with --no-classic): %w", err)
	}
	return append([]provision.File{
		{Local: server, Remote: path.Join(provision.GuestBinDir, classic.ServerBinary)},
		{Local: client, Remote: path.Join(provision.GuestBinDir, classic.ClientBinary)},
	}, p.files...), nil
}

// deployLine is the line printed for a file deployed to a guest, its guest
// path padded to width.
func deployLine(role string, d provision.Deployed, width int) string {
	state := "unchanged"
	if d.Changed {
		state = "uploaded"
	}
	return fmt.Sprintf("%-6s  %-*s  %s (sha256 %.8s…)", role, width, d.Remote, state, d.SHA256)
}
