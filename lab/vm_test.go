package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/echo/classic"
	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/labtest"
	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/vms"
)

// run executes cmd in a guest and returns its stdout, failing t on a
// non-zero exit.
func run(t *testing.T, ctx context.Context, l *lab.Lab, role, cmd string) string {
	t.Helper()
	out, err := runErr(ctx, l, role, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runErr executes cmd in a guest; a non-zero exit is an error.
func runErr(ctx context.Context, l *lab.Lab, role, cmd string) (string, error) {
	c, err := l.Dial(ctx, role)
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", role, err)
	}
	defer c.Close()
	var out, errb bytes.Buffer
	status, err := c.Run(ctx, cmd, provision.RunOptions{Stdout: &out, Stderr: &errb})
	if err != nil || status != 0 {
		return out.String(), fmt.Errorf("%s: %q: status %d, err %v, stderr %s", role, cmd, status, err, errb.String())
	}
	return out.String(), nil
}

// TestLabVMs boots a real client and server and exercises the substrate in
// order: exec, SFTP, the lab link, the fault verbs, shutdown -h, and down.
func TestLabVMs(t *testing.T) {
	labtest.Require(t)
	cfg := labtest.Config(t, "t-substrate")
	cfg.Grace = 2 * time.Second
	l := labtest.Up(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	hv := l.Hypervisor()
	server, _ := l.State.Guest(lab.RoleServer)
	client, _ := l.State.Guest(lab.RoleClient)

	t.Run("exec in both guests", func(t *testing.T) {
		for _, role := range lab.Roles {
			if got := strings.TrimSpace(run(t, ctx, l, role, "uname -r")); got != l.State.KernelRelease {
				t.Errorf("%s: uname -r = %q, want %q", role, got, l.State.KernelRelease)
			}
			if got := strings.TrimSpace(run(t, ctx, l, role, "hostname")); got != role {
				t.Errorf("hostname = %q, want %q", got, role)
			}
		}
	})

	t.Run("upload over sftp and run", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "hello.sh")
		if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello from $(hostname)\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		c, err := l.Dial(ctx, lab.RoleServer)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if changed, err := c.Upload(ctx, script, "/opt/hostlab/bin/hello.sh", 0o755); err != nil || !changed {
			t.Fatalf("first upload: changed %v, err %v", changed, err)
		}
		if changed, err := c.Upload(ctx, script, "/opt/hostlab/bin/hello.sh", 0o755); err != nil || changed {
			t.Fatalf("identical upload: changed %v, err %v; want skipped", changed, err)
		}
		if got := run(t, ctx, l, lab.RoleServer, "/opt/hostlab/bin/hello.sh"); got != "hello from server\n" {
			t.Fatalf("script said %q", got)
		}
	})

	t.Run("deploy the classic pair and echo across the link", func(t *testing.T) {
		srvBin, cliBin, err := classic.Build(ctx, "", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range lab.Roles {
			c, err := l.Dial(ctx, role)
			if err != nil {
				t.Fatal(err)
			}
			files := []provision.File{{Local: srvBin}, {Local: cliBin}}
			if _, err := provision.Deploy(ctx, c, files); err != nil {
				t.Fatalf("deploy to %s: %v", role, err)
			}
			c.Close()
		}
		srvErr := make(chan error, 1)
		go func() {
			_, err := runErr(ctx, l, lab.RoleServer, "timeout 20 /opt/hostlab/bin/echo_server 9997 >/dev/null 2>&1; true")
			srvErr <- err
		}()
		var out string
		for i := 0; i < 50 && !strings.Contains(out, `"ev":"read"`); i++ {
			time.Sleep(200 * time.Millisecond)
			out, _ = runErr(ctx, l, lab.RoleClient, fmt.Sprintf("/opt/hostlab/bin/echo_client --lines 2 --interval-ms 100 %s 9997", server.LabIP()))
		}
		if strings.Count(out, `"ev":"read"`) != 2 {
			t.Fatalf("classic client did not get 2 echoes:\n%s", out)
		}
		run(t, ctx, l, lab.RoleServer, "killall echo_server; true")
		if err := <-srvErr; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("tcp over the lab link", func(t *testing.T) {
		// The server's lab address is reachable only over the lab link (the
		// management network is 10.0.2.0/24 with no gateway).
		srvErr := make(chan error, 1)
		go func() {
			_, err := runErr(ctx, l, lab.RoleServer, "echo pong | nc -l -p 9000 -w 20")
			srvErr <- err
		}()
		var got string
		for i := 0; i < 50 && !strings.Contains(got, "pong"); i++ {
			time.Sleep(200 * time.Millisecond)
			got = run(t, ctx, l, lab.RoleClient, fmt.Sprintf("echo ping | nc -w 3 %s 9000 || true", server.LabIP()))
		}
		if !strings.Contains(got, "pong") {
			t.Fatalf("client got %q over the lab link, want pong", got)
		}
		if err := <-srvErr; err != nil {
			t.Fatalf("server side: %v", err)
		}
		if out := run(t, ctx, l, lab.RoleClient, "ip -o addr show"); !strings.Contains(out, client.LabIP()+"/") {
			t.Fatalf("client lacks its lab address %s: %s", client.LabIP(), out)
		}
	})

	events, err := hv.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent := func(t *testing.T, event string) {
		t.Helper()
		deadline := time.After(2 * time.Minute)
		for {
			select {
			case ev := <-events:
				if ev.Domain == server.Domain && ev.Event == event {
					return
				}
			case <-deadline:
				t.Fatalf("no %s lifecycle event for %s", event, server.Domain)
			}
		}
	}
	bootCount := func(t *testing.T) int {
		b, _ := os.ReadFile(server.Console)
		return bytes.Count(b, []byte(lab.ReadyMarker))
	}
	waitBoots := func(t *testing.T, n int) {
		t.Helper()
		for i := 0; i < 600 && bootCount(t) < n; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if bootCount(t) < n {
			t.Fatalf("server console shows %d boots, want %d", bootCount(t), n)
		}
		run(t, ctx, l, lab.RoleServer, "true")
	}

	t.Run("reset reboots the server", func(t *testing.T) {
		before := bootCount(t)
		if err := hv.Reset(ctx, server.Domain); err != nil {
			t.Fatal(err)
		}
		waitBoots(t, before+1)
	})

	t.Run("power-off then start", func(t *testing.T) {
		if err := hv.PowerOff(ctx, server.Domain); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, "stopped")
		if st, err := hv.State(ctx, server.Domain); err != nil || st != vms.StateShutoff {
			t.Fatalf("state after power-off = %v, %v", st, err)
		}
		before := bootCount(t)
		if err := hv.Start(ctx, server.Domain); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, "started")
		waitBoots(t, before+1)
	})

	t.Run("acpi shutdown", func(t *testing.T) {
		if err := hv.Shutdown(ctx, server.Domain); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := hv.WaitState(wctx, server.Domain, vms.StateShutoff); err != nil {
			t.Fatalf("%v; console:\n%s", err, tail(server.Console))
		}
		before := bootCount(t)
		if err := hv.Start(ctx, server.Domain); err != nil {
			t.Fatal(err)
		}
		waitBoots(t, before+1)
	})

	t.Run("shutdown -h runs SIGTERM, grace, SIGKILL", func(t *testing.T) {
		// One process ignores SIGTERM and must die only at SIGKILL; the other
		// takes the default action at SIGTERM.
		run(t, ctx, l, lab.RoleServer, "setsid sh -c 'trap \"\" TERM; exec sleep 1000' >/dev/null 2>&1 </dev/null & setsid sleep 1001 >/dev/null 2>&1 </dev/null & true")
		mark, _ := os.ReadFile(server.Console)
		c, err := l.Dial(ctx, lab.RoleServer)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Run(ctx, "shutdown -h now", provision.RunOptions{})
		c.Close()
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := hv.WaitState(wctx, server.Domain, vms.StateShutoff); err != nil {
			t.Fatalf("%v; console:\n%s", err, tail(server.Console))
		}
		b, _ := os.ReadFile(server.Console)
		log := string(b[len(mark):])
		iTerm := strings.Index(log, "SIGTERM")
		iKill := strings.Index(log, "SIGKILL")
		if iTerm < 0 || iKill < iTerm {
			t.Fatalf("console lacks SIGTERM then SIGKILL:\n%s", log)
		}
		if killLine := lineAt(log, iKill); !strings.Contains(killLine, " 1 remaining") {
			t.Fatalf("want exactly the SIGTERM-ignoring process killed at SIGKILL, console says %q:\n%s", killLine, log)
		}
		before := bootCount(t)
		if err := hv.Start(ctx, server.Domain); err != nil {
			t.Fatal(err)
		}
		waitBoots(t, before+1)
	})

	t.Run("down leaves nothing", func(t *testing.T) {
		ports := []int{server.MgmtPort, client.MgmtPort}
		if err := lab.Down(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{server.Domain, client.Domain} {
			if st, err := hv.State(ctx, d); err != nil || st != vms.StateMissing {
				t.Errorf("domain %s after down: %v, %v", d, st, err)
			}
		}
		if _, err := os.Stat(l.Dir()); !os.IsNotExist(err) {
			t.Errorf("lab folder %s still exists: %v", l.Dir(), err)
		}
		for _, d := range []string{server.Domain, client.Domain} {
			if pid := qemuPID(d); pid != "" {
				t.Errorf("QEMU for %s still running as pid %s", d, pid)
			}
		}
		for _, p := range ports {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				t.Errorf("port %d still taken after down: %v", p, err)
				continue
			}
			ln.Close()
		}
		if err := lab.Down(ctx, cfg); err != nil {
			t.Errorf("second down: %v", err)
		}
	})
}

// lineAt returns the line of s holding byte offset i.
func lineAt(s string, i int) string {
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s[start:]
	}
	return s[start : i+end]
}

// qemuPID finds a running QEMU whose command line names domain.
func qemuPID(domain string) string {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte("qemu")) && bytes.Contains(b, []byte("guest="+domain+",")) {
			return e.Name()
		}
	}
	return ""
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
