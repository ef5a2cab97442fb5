package vms

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func testMachine(role string) Machine {
	return Machine{
		Name: DomainName("t1", role), Lab: "t1", Role: role,
		Kernel: "/var/lib/hostlab/cache/kernels/6.1.0-56-amd64/vmlinux", Initrd: "/var/lib/hostlab/labs/t1/" + role + ".initrd",
		Cmdline:   "console=ttyS0 hostlab.name=" + role,
		MemoryMiB: 128, VCPUs: 1, Accel: AccelTCG,
		Console: "/var/lib/hostlab/labs/t1/" + role + ".console.log",
		MgmtMAC: "52:54:00:00:01:01", MgmtPort: 40022,
		Links: []Link{{MAC: "52:54:00:00:02:01", LocalPort: 41001, RemotePort: 41002}},
		Pcaps: []string{"/var/lib/hostlab/labs/t1/" + role + ".pcap"},
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./vms -update to create it): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file; run with -update if the change is intended.\ngot:\n%s", name, got)
	}
}

func TestDomainXMLGolden(t *testing.T) {
	for _, accel := range []Accel{AccelTCG, AccelKVM} {
		m := testMachine("server")
		m.Accel = accel
		x, err := m.DomainXML()
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "server-"+string(accel)+".xml", x)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	x, err := testMachine("client").DomainXML()
	if err != nil {
		t.Fatal(err)
	}
	lab, role, ok := parseMetadata(x)
	if !ok || lab != "t1" || role != "client" {
		t.Fatalf("parseMetadata = %q %q %v, want t1 client true", lab, role, ok)
	}
	if _, _, ok := parseMetadata("<domain><name>x</name></domain>"); ok {
		t.Fatal("parseMetadata accepted a domain without hostlab metadata")
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]func(*Machine){
		"no kernel":     func(m *Machine) { m.Kernel = "" },
		"small memory":  func(m *Machine) { m.MemoryMiB = 16 },
		"bad accel":     func(m *Machine) { m.Accel = "hvf" },
		"bad mac":       func(m *Machine) { m.Links[0].MAC = "zz" },
		"bad port":      func(m *Machine) { m.MgmtPort = 70000 },
		"pcap mismatch": func(m *Machine) { m.Pcaps = append(m.Pcaps, "x") },
	}
	for name, mutate := range cases {
		m := testMachine("server")
		mutate(&m)
		if err := m.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, m)
		}
	}
}

func TestLifecycleWithFake(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	h := newHypervisor(f, "test:///fake")
	m := testMachine("server")
	if st, err := h.State(ctx, m.Name); err != nil || st != StateMissing {
		t.Fatalf("State before define = %v, %v; want missing", st, err)
	}
	if err := h.Define(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		op   func(context.Context, string) error
		want State
	}{
		{h.Reset, StateRunning},
		{h.Pause, StatePaused},
		{h.Resume, StateRunning},
		{h.PowerOff, StateShutoff},
		{h.Start, StateRunning},
		{h.Shutdown, StateShutoff},
	}
	for i, s := range steps {
		if err := s.op(ctx, m.Name); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if err := h.WaitState(ctx, m.Name, s.want); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := h.PowerOff(ctx, m.Name); err == nil || !isNotRunning(err) {
		t.Fatalf("PowerOff of a stopped domain = %v, want libvirt's operation-invalid error", err)
	}
	if err := h.Start(ctx, "hostlab-nope-server"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start of an unknown domain = %v, want ErrNotFound", err)
	}
}

func TestListAndRemove(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	h := newHypervisor(f, "test:///fake")
	for _, role := range []string{"client", "server"} {
		m := testMachine(role)
		if err := h.Define(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := h.Start(ctx, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	// A domain that is not hostlab's stays out of the list.
	f.domains["other-vm"] = &fakeDomain{xml: "<domain type='qemu'><name>other-vm</name></domain>"}
	got, err := h.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Role != "client" || got[1].Role != "server" || got[0].State != StateRunning {
		t.Fatalf("List = %+v", got)
	}
	for i := 0; i < 2; i++ { // Remove is idempotent.
		if err := h.Remove(ctx, DomainName("t1", "server")); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if _, ok := f.domains[DomainName("t1", "server")]; ok {
		t.Fatal("Remove left the domain defined")
	}
	if !strings.Contains(strings.Join(f.calls, ";"), "destroy hostlab-t1-server;undefine hostlab-t1-server") {
		t.Fatalf("Remove did not destroy then undefine: %v", f.calls)
	}
}

func TestEventsFromFake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := newFake()
	h := newHypervisor(f, "test:///fake")
	evs, err := h.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := testMachine("server")
	if err := h.Define(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	if err := h.PowerOff(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for len(seen) < 3 {
		select {
		case ev := <-evs:
			seen = append(seen, ev.Event+"/"+ev.Detail)
		case <-ctx.Done():
			t.Fatalf("events so far %v: %v", seen, ctx.Err())
		}
	}
	if strings.Join(seen, " ") != "defined/0 started/booted stopped/destroyed" {
		t.Fatalf("events = %v", seen)
	}
}

func TestCallCtxHonoursDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	block := make(chan struct{})
	defer close(block)
	err := callCtx(ctx, "stuck call", func() error { <-block; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("callCtx = %v, want context.Canceled", err)
	}
}

func TestResolveURI(t *testing.T) {
	t.Setenv("LIBVIRT_DEFAULT_URI", "")
	if got := ResolveURI(""); got != DefaultURI {
		t.Fatalf("ResolveURI() = %q", got)
	}
	t.Setenv("LIBVIRT_DEFAULT_URI", "qemu+ssh://h/system")
	if got := ResolveURI(""); got != "qemu+ssh://h/system" {
		t.Fatalf("ResolveURI() with env = %q", got)
	}
	if got := ResolveURI("test:///default"); got != "test:///default" {
		t.Fatalf("ResolveURI(flag) = %q", got)
	}
}

func TestEventsServeSeveralSubscribers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := newFake()
	h := newHypervisor(f, "test:///fake")
	first, cancelFirst := context.WithCancel(ctx)
	a, err := h.Events(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Events(ctx)
	if err != nil {
		t.Fatalf("second subscription on one connection: %v", err)
	}
	if err := h.Define(ctx, testMachine("server")); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan Event{"first": a, "second": b} {
		select {
		case ev := <-ch:
			if ev.Event != "defined" {
				t.Errorf("%s subscriber got %+v", name, ev)
			}
		case <-ctx.Done():
			t.Fatalf("%s subscriber got nothing", name)
		}
	}
	cancelFirst()
	for range a { // Closed once its context ends.
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for range b { // Closed with the connection.
	}
}
