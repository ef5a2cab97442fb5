package guestsysctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeTree builds a sysctl tree in a temporary folder: files with the
// kernel's formatting (tcp_rmem tab-separated, a newline at the end), a
// read-only and a write-only file, a name with a dot, and a key outside net.
func fakeTree(t *testing.T) Table {
	t.Helper()
	dir := t.TempDir()
	tb := Table{Root: filepath.Join(dir, "proc/sys"), Baseline: filepath.Join(dir, "run/hostlab/sysctl.baseline")}
	files := []struct {
		key, value string
		mode       os.FileMode
	}{
		{"net.ipv4.tcp_retries2", "15\n", 0o644},
		{"net.ipv4.tcp_rmem", "4096\t131072\t6291456\n", 0o644},
		{"net.ipv4.tcp_fastopen_key", "00000000-00000000\n", 0o600},
		{"net.ipv4.tcp_available_congestion_control", "reno cubic\n", 0o444},
		{"net.ipv4.route.flush", "", 0o200},
		{"net.ipv4.neigh.eth1.base_reachable_time_ms", "30000\n", 0o644},
		{"net.ipv6.conf.eth0.stable_secret", "", 0o600},
		{"kernel.panic", "0\n", 0o644},
	}
	for _, f := range files {
		p := tb.path(f.key)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.value), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	// An interface named "eth0.100" (a VLAN): no dotted key can name it.
	vlan := filepath.Join(tb.Root, "net/ipv4/conf/eth0.100")
	if err := os.MkdirAll(vlan, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vlan, "forwarding"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// procfs applies a sysctl's mode to root too (root here bypasses it),
	// and stable_secret fails to read until it is set (EIO).
	tb.readFile = func(p string, rw bool) ([]byte, error) {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		want := os.FileMode(0o400)
		if rw {
			want |= 0o200
		}
		if fi.Mode().Perm()&want != want {
			return nil, &os.PathError{Op: "open", Path: p, Err: syscall.EACCES}
		}
		if strings.HasSuffix(p, "stable_secret") {
			return nil, &os.PathError{Op: "read", Path: p, Err: syscall.EIO}
		}
		return readSysctl(p, rw)
	}
	return tb
}

// set writes a raw value into the fake tree, as a leftover or the kernel would.
func set(t *testing.T, tb Table, key, raw string) {
	t.Helper()
	if err := os.WriteFile(tb.path(key), []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSaveBaseline(t *testing.T) {
	tb := fakeTree(t)
	n, err := tb.SaveBaseline([]string{"kernel.panic"})
	if err != nil {
		t.Fatal(err)
	}
	base, err := tb.LoadBaseline()
	if err != nil {
		t.Fatal(err)
	}
	want := Values{
		"net.ipv4.tcp_retries2":                      "15",
		"net.ipv4.tcp_rmem":                          "4096 131072 6291456",
		"net.ipv4.tcp_fastopen_key":                  "00000000-00000000",
		"net.ipv4.neigh.eth1.base_reachable_time_ms": "30000",
		"kernel.panic":                               "0",
	}
	if !reflect.DeepEqual(base, want) || n != len(want) {
		t.Fatalf("baseline (%d values) = %v, want %v", n, base, want)
	}
	if _, err := tb.SaveBaseline([]string{"kernel.nope"}); err == nil {
		t.Error("SaveBaseline with a missing boot key: no error")
	}
	if base, _ := tb.LoadBaseline(); base["net.ipv4.tcp_retries2"] != "15" {
		t.Error("SaveBaseline with a missing boot key did not save the rest")
	}
}

func TestLoadBaselineMissing(t *testing.T) {
	tb := fakeTree(t)
	if _, err := tb.Restore(); !errors.Is(err, ErrNoBaseline) {
		t.Fatalf("Restore without a baseline = %v, want ErrNoBaseline", err)
	}
}

func TestApplyRestoresThenWrites(t *testing.T) {
	tb := fakeTree(t)
	if _, err := tb.SaveBaseline(nil); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a killed run.
	set(t, tb, "net.ipv4.tcp_retries2", "9\n")
	set(t, tb, "net.ipv4.neigh.eth1.base_reachable_time_ms", "1000\n")
	rep, err := tb.Apply(Values{"net.ipv4.tcp_rmem": "4096  65536\t1048576 ", "kernel.panic": "10"})
	if err != nil {
		t.Fatal(err)
	}
	wantRestored := map[string]Change{
		"net.ipv4.tcp_retries2":                      {Was: "9", Now: "15"},
		"net.ipv4.neigh.eth1.base_reachable_time_ms": {Was: "1000", Now: "30000"},
	}
	if !reflect.DeepEqual(rep.Restored, wantRestored) {
		t.Errorf("restored = %v, want %v", rep.Restored, wantRestored)
	}
	wantApplied := Values{"net.ipv4.tcp_rmem": "4096 65536 1048576", "kernel.panic": "10"}
	if !reflect.DeepEqual(rep.Applied, wantApplied) {
		t.Errorf("applied = %v, want %v", rep.Applied, wantApplied)
	}
	wantBase := Values{"net.ipv4.tcp_rmem": "4096 131072 6291456", "kernel.panic": "0"}
	if !reflect.DeepEqual(rep.Baseline, wantBase) {
		t.Errorf("baseline = %v, want %v", rep.Baseline, wantBase)
	}
	if b, _ := os.ReadFile(tb.path("net.ipv4.tcp_rmem")); string(b) != "4096 65536 1048576" {
		t.Errorf("tcp_rmem file holds %q", b)
	}

	// kernel.panic joined the baseline when first written: restore undoes it.
	res, err := tb.Restore()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Change{
		"net.ipv4.tcp_rmem": {Was: "4096 65536 1048576", Now: "4096 131072 6291456"},
		"kernel.panic":      {Was: "10", Now: "0"},
	}
	if !reflect.DeepEqual(res.Restored, want) {
		t.Errorf("restored = %v, want %v", res.Restored, want)
	}
	// Tabs against spaces is no difference.
	set(t, tb, "net.ipv4.tcp_rmem", "4096\t131072\t6291456\n")
	if res, err := tb.Restore(); err != nil || len(res.Restored) != 0 {
		t.Errorf("restore at the baseline = %v, %v; want nothing restored", res.Restored, err)
	}
}

func TestApplyRefusesBadKeysBeforeAnyChange(t *testing.T) {
	tb := fakeTree(t)
	if _, err := tb.SaveBaseline(nil); err != nil {
		t.Fatal(err)
	}
	set(t, tb, "net.ipv4.tcp_retries2", "9\n")
	for _, key := range []string{"net/ipv4/tcp_retries2", "net..ipv4", "..net.ipv4", "net.ipv4.", "tcp_retries2", "net.ipv4.tcp retries2", ""} {
		if _, err := tb.Apply(Values{key: "1", "net.ipv4.tcp_rmem": "1 2 3"}); !errors.Is(err, ErrBadKey) {
			t.Errorf("Apply(%q) = %v, want ErrBadKey", key, err)
		}
	}
	for _, key := range []string{"net.ipv4.nope", "net.ipv4"} {
		if _, err := tb.Apply(Values{key: "1"}); err == nil || errors.Is(err, ErrBadKey) {
			t.Errorf("Apply(%q) = %v, want a missing-sysctl error", key, err)
		}
	}
	if v, _ := tb.Read("net.ipv4.tcp_retries2"); v != "9" {
		t.Errorf("a refused apply changed tcp_retries2 to %s", v)
	}
	if v, _ := tb.Read("net.ipv4.tcp_rmem"); v != "4096 131072 6291456" {
		t.Errorf("a refused apply changed tcp_rmem to %s", v)
	}
}

func TestRestoreReportsUnwritable(t *testing.T) {
	tb := fakeTree(t)
	if _, err := tb.SaveBaseline(nil); err != nil {
		t.Fatal(err)
	}
	set(t, tb, "net.ipv4.tcp_retries2", "9\n")
	// A directory where the file was: it reads and writes fail.
	p := tb.path("net.ipv4.tcp_retries2")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Restore(); err == nil || !strings.Contains(err.Error(), "net.ipv4.tcp_retries2") {
		t.Fatalf("Restore = %v, want an error naming tcp_retries2", err)
	}
	// A key gone from the tree (an interface removed) is no failure.
	if err := os.RemoveAll(filepath.Join(tb.Root, "net/ipv4/neigh/eth1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if res, err := tb.Restore(); err != nil || len(res.Restored) != 0 {
		t.Fatalf("Restore with keys gone = %v, %v", res.Restored, err)
	}
}

func TestGet(t *testing.T) {
	tb := fakeTree(t)
	got, err := tb.Get([]string{"net.ipv4.tcp_rmem", "net.ipv4.nope"})
	if err != nil || !reflect.DeepEqual(got, Values{"net.ipv4.tcp_rmem": "4096 131072 6291456"}) {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if _, err := tb.Get([]string{"net/ipv4"}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("Get of a bad key = %v", err)
	}
}

func TestCommand(t *testing.T) {
	tb := fakeTree(t)
	if _, err := tb.SaveBaseline(nil); err != nil {
		t.Fatal(err)
	}
	set(t, tb, "net.ipv4.tcp_retries2", "7\n")
	var out, errb bytes.Buffer
	in := strings.NewReader(`{"net.ipv4.tcp_rmem":"4096 131072 6291456 ; rm -rf /"}`)
	// The value is data: the fake file takes it as the kernel would refuse it.
	if st := run(tb, []string{"apply"}, in, &out, &errb); st != 0 {
		t.Fatalf("apply: status %d: %s", st, errb.String())
	}
	var rep ApplyReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("apply printed %q: %v", out.String(), err)
	}
	if rep.Applied["net.ipv4.tcp_rmem"] != "4096 131072 6291456 ; rm -rf /" || rep.Restored["net.ipv4.tcp_retries2"] != (Change{Was: "7", Now: "15"}) {
		t.Errorf("apply report %+v", rep)
	}
	cases := []struct {
		args   []string
		stdin  string
		status int
		stderr string
	}{
		{nil, "", 2, "usage"},
		{[]string{"frobnicate"}, "", 2, "usage"},
		{[]string{"apply"}, `["net.ipv4.tcp_retries2"]`, 2, "JSON object"},
		{[]string{"apply"}, `{"net/ipv4/tcp_retries2":"1"}`, 2, "bad sysctl key"},
		{[]string{"apply"}, `{"net.ipv4.nope":"1"}`, 1, "no sysctl net.ipv4.nope"},
		{[]string{"get", "net..ipv4"}, "", 2, "bad sysctl key"},
		{[]string{"restore"}, "", 0, ""},
		{[]string{"get", "net.ipv4.tcp_retries2"}, "", 0, ""},
	}
	for _, c := range cases {
		out.Reset()
		errb.Reset()
		st := run(tb, c.args, strings.NewReader(c.stdin), &out, &errb)
		if st != c.status || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("%v <%s: status %d, stderr %q; want %d and %q", c.args, c.stdin, st, errb.String(), c.status, c.stderr)
		}
	}
	if got := strings.TrimSpace(out.String()); got != `{"net.ipv4.tcp_retries2":"15"}` {
		t.Errorf("get printed %s", got)
	}
}

func TestCheckKey(t *testing.T) {
	for _, k := range []string{"net.ipv4.tcp_retries2", "net.ipv4.neigh.eth-1.delay_first_probe_time", "kernel.panic", "net.ipv6.conf.Eth0.mtu"} {
		if err := CheckKey(k); err != nil {
			t.Errorf("CheckKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "net", ".net.ipv4", "net.ipv4.", "net..ipv4", "net/ipv4.x", "net.ipv4.a b", "net.ipv4.x=1", "net.ipv4.ä"} {
		if err := CheckKey(k); !errors.Is(err, ErrBadKey) {
			t.Errorf("CheckKey(%q) = %v, want ErrBadKey", k, err)
		}
	}
}

func TestReadSysctlLongValues(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, 4095, 4096, 4097, 10000} {
		p := filepath.Join(dir, "v")
		want := strings.Repeat("x", n)
		if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readSysctl(p, false)
		if err != nil || string(got) != want {
			t.Errorf("readSysctl of %d bytes = %d bytes, %v", n, len(got), err)
		}
	}
}

func TestLoadBaselineWaitsForTheSnapshot(t *testing.T) {
	tb := fakeTree(t)
	tb.Wait = 10 * time.Second
	done := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, err := tb.SaveBaseline(nil)
		done <- err
	}()
	base, err := tb.LoadBaseline()
	if err != nil || base["net.ipv4.tcp_retries2"] != "15" {
		t.Fatalf("LoadBaseline = %v, %v", base, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A failed snapshot is reported at once, not waited for.
	tb = fakeTree(t)
	tb.Wait = time.Hour
	tb.Root = filepath.Join(tb.Root, "missing")
	if _, err := tb.SaveBaseline(nil); err == nil {
		t.Fatal("SaveBaseline of a missing tree: no error")
	}
	if _, err := tb.LoadBaseline(); !errors.Is(err, ErrNoBaseline) || !strings.Contains(err.Error(), "snapshot failed") {
		t.Fatalf("LoadBaseline after a failed snapshot = %v", err)
	}
}
