package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hostlab/hostlab/provision"
)

func TestParseDeployFlags(t *testing.T) {
	tests := []struct {
		to        string
		files     []string
		noClassic bool
		want      deployPlan
		err       string
	}{
		{to: "both", want: deployPlan{roles: []string{"client", "server"}, classic: true}},
		{to: "server", files: []string{"./a/prog", "b:/usr/bin/b", "c:/srv/", "d:/srv/x/../d2"}, noClassic: true,
			want: deployPlan{roles: []string{"server"}, files: []provision.File{
				{Local: "./a/prog", Remote: "/opt/hostlab/bin/prog"},
				{Local: "b", Remote: "/usr/bin/b"},
				{Local: "c", Remote: "/srv/c"},
				{Local: "d", Remote: "/srv/d2"},
			}}},
		{to: "client", files: []string{"x:"}, want: deployPlan{roles: []string{"client"}, classic: true,
			files: []provision.File{{Local: "x", Remote: "/opt/hostlab/bin/x"}}}},
		{to: "router", err: `--to "router": want client, server or both`},
		{to: "", err: `--to "": want client, server or both`},
		{to: "both", noClassic: true, err: "nothing to deploy"},
		{to: "both", files: []string{":/x"}, err: "want LOCAL[:REMOTE]"},
		{to: "both", files: []string{"a:rel/path"}, err: "is not absolute"},
		{to: "both", files: []string{"out/echo_server"}, err: "already deployed from the classic echo pair"},
		{to: "both", files: []string{"a:/x", "b/a:/x"}, noClassic: true, err: "/x is already deployed from a"},
	}
	for _, tt := range tests {
		got, err := parseDeployFlags(tt.to, tt.files, tt.noClassic)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseDeployFlags(%q, %q, %v) error %v; want one containing %q", tt.to, tt.files, tt.noClassic, err, tt.err)
		case tt.err == "" && (err != nil || !reflect.DeepEqual(got, tt.want)):
			t.Errorf("parseDeployFlags(%q, %q, %v) = %+v, %v; want %+v", tt.to, tt.files, tt.noClassic, got, err, tt.want)
		}
	}
}

func TestDeployLine(t *testing.T) {
	d := provision.Deployed{File: provision.File{Remote: "/opt/hostlab/bin/echo_client"}, Changed: true, SHA256: "1a2b3c4d5e6f"}
	if got, want := deployLine("server", d, 28), "server  /opt/hostlab/bin/echo_client  uploaded (sha256 1a2b3c4d…)"; got != want {
		t.Errorf("deployLine = %q\nwant        %q", got, want)
	}
	d.Changed, d.Remote = false, "/x"
	if got, want := deployLine("client", d, 4), "client  /x    unchanged (sha256 1a2b3c4d…)"; got != want {
		t.Errorf("deployLine = %q\nwant        %q", got, want)
	}
}

func TestDeployCmdBadInput(t *testing.T) {
	for _, args := range [][]string{{"--to", "router"}, {"--no-classic"}, {"extra"}} {
		cmd := newDeployCmd(&globals{home: t.TempDir()})
		cmd.SetArgs(args)
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		if err := cmd.Execute(); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("deploy %q: error %v; want a one-line error", args, err)
		}
	}
}

func TestDeployFilesBuildsClassic(t *testing.T) {
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("no C compiler (cc)")
	}
	home := t.TempDir()
	files, err := deployFiles(context.Background(), &globals{home: home}, deployPlan{classic: true, files: []provision.File{{Local: "x", Remote: "/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/opt/hostlab/bin/echo_server", "/opt/hostlab/bin/echo_client", "/x"}
	for i, f := range files {
		if i >= len(want) || f.Remote != want[i] || (i < 2 && !strings.HasPrefix(f.Local, filepath.Join(home, "cache", "classic"))) {
			t.Errorf("files[%d] = %+v; want remote %s under %s", i, f, want[min(i, len(want)-1)], home)
		}
	}
}
