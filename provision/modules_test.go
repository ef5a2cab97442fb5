package provision

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKO returns a minimal ELF relocatable object whose .modinfo section
// holds the given key=value strings.
func fakeKO(t *testing.T, kv ...string) []byte {
	t.Helper()
	modinfo := []byte(strings.Join(kv, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shsize = 64, 64
	modOff := uint64(ehsize)
	strOff := modOff + uint64(len(modinfo))
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7
	var b bytes.Buffer
	h := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: 1,
		Shoff: shOff, Ehsize: ehsize, Shentsize: shsize, Shnum: 3, Shstrndx: 2,
	}
	copy(h.Ident[:], "\x7fELF")
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	binary.Write(&b, binary.LittleEndian, h)
	b.Write(modinfo)
	b.Write(shstr)
	b.Write(make([]byte, shOff-uint64(b.Len())))
	for _, s := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: modOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	} {
		binary.Write(&b, binary.LittleEndian, s)
	}
	return b.Bytes()
}

// fakeTree writes a modules tree for release "9.9.9-test" and returns it.
func fakeTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lib/modules/9.9.9-test")
	write := func(rel string, data []byte) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vm := "vermagic=9.9.9-test SMP mod_unload"
	write("kernel/drivers/a.ko", fakeKO(t, "name=a", "depends=b,c", vm))
	write("kernel/drivers/b.ko", fakeKO(t, "depends=c", vm))
	write("kernel/lib/c.ko", fakeKO(t, "depends=", vm))
	write("kernel/net/d-dash.ko", fakeKO(t, "depends=", vm))
	write("kernel/net/f.ko", fakeKO(t, "depends=e", vm))
	write("kernel/net/h.ko", fakeKO(t, "depends=q", vm))
	write("kernel/net/old.ko", fakeKO(t, "depends=", "vermagic=1.0.0 SMP"))
	write("kernel/net/z.ko.zst", []byte("zstd"))
	write("modules.builtin", []byte("kernel/net/e.ko\nkernel/net/packet/af_packet.ko\n"))
	if _, err := exec.LookPath("xz"); err == nil {
		write("kernel/net/x.ko", fakeKO(t, "depends=d-dash", vm))
		if out, err := exec.Command("xz", filepath.Join(dir, "kernel/net/x.ko")).CombinedOutput(); err != nil {
			t.Fatalf("xz: %v: %s", err, out)
		}
	}
	return dir
}

// names returns the module names of mods.
func names(mods []kmod) string {
	var s []string
	for _, m := range mods {
		s = append(s, m.name)
	}
	return strings.Join(s, " ")
}

func TestResolveModules(t *testing.T) {
	dir := fakeTree(t)
	ctx := context.Background()
	tests := []struct {
		want, optional []string
		order          string
	}{
		{[]string{"a"}, nil, "c b a"},
		{[]string{"a", "b", "c"}, nil, "c b a"},
		{[]string{"d_dash", "d-dash"}, nil, "d_dash"},
		{[]string{"f"}, nil, "f"},                          // e is built in
		{[]string{"e"}, []string{"af_packet", "nope"}, ""}, // built in or optional
		{[]string{"c"}, []string{"b", "c"}, "c b"},         // optional present
		{[]string{"x"}, nil, "d_dash x"},                   // .ko.xz
	}
	for _, tt := range tests {
		mods, err := resolveModules(ctx, dir, "9.9.9-test", tt.want, tt.optional)
		if err != nil {
			t.Errorf("resolve %v: %v", tt.want, err)
			continue
		}
		if got := names(mods); got != tt.order {
			t.Errorf("resolve %v %v = %q, want %q", tt.want, tt.optional, got, tt.order)
		}
	}
	if mods, _ := resolveModules(ctx, dir, "", []string{"x"}, nil); len(mods) == 2 && mods[1].data[0] != 0x7f {
		t.Error("x.ko.xz was not decompressed")
	}
}

func TestResolveModulesErrors(t *testing.T) {
	dir := fakeTree(t)
	tests := []struct {
		want     string
		sentinel error
		text     string
	}{
		{"zz", ErrModuleNotFound, "zz"},
		{"h", ErrModuleNotFound, "q (needed by h)"},
		{"z", nil, "zstd"},
		{"old", nil, "built for kernel 1.0.0"},
	}
	for _, tt := range tests {
		_, err := resolveModules(context.Background(), dir, "9.9.9-test", []string{tt.want}, nil)
		if err == nil || !strings.Contains(err.Error(), tt.text) || (tt.sentinel != nil && !errors.Is(err, tt.sentinel)) {
			t.Errorf("resolve %s: error %v, want one containing %q (sentinel %v)", tt.want, err, tt.text, tt.sentinel)
		}
	}
}

func TestResolveModulesRealKernel(t *testing.T) {
	dir, meta := realKernel(t)
	mods, err := resolveModules(context.Background(), filepath.Join(dir, "modules"), meta.Release,
		DefaultModules, DefaultOptionalModules)
	if err != nil {
		t.Fatal(err)
	}
	got := names(mods)
	t.Logf("load order: %s", got)
	pos := map[string]int{}
	for i, m := range mods {
		pos[m.name] = i
	}
	want := "virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net evdev button inet_diag tcp_diag sch_netem ifb sch_ingress cls_matchall act_mirred"
	for _, n := range strings.Fields(want) {
		if _, ok := pos[n]; !ok {
			t.Errorf("load order %q lacks %s", got, n)
		}
	}
	if len(mods) != len(strings.Fields(want)) {
		t.Errorf("load order %q, want the modules of %q", got, want)
	}
	for _, m := range mods {
		info, _ := modinfo(m.data)
		for _, dep := range strings.Split(info["depends"], ",") {
			if dep != "" && pos[moduleName(dep)] >= pos[m.name] {
				t.Errorf("%s is loaded before its dependency %s", m.name, dep)
			}
		}
	}
}
