package provision

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultModules lists the kernel modules every guest loads (virtio
// networking and the ACPI power button); their dependencies are added.
// virtio_pci is listed because it is the transport virtio_net's device sits
// on, not a symbol dependency of virtio_net.
var DefaultModules = []string{"virtio_pci", "virtio_net", "evdev", "button"}

// DefaultOptionalModules lists modules loaded when the kernel has them
// (af_packet for tcpdump, tcp_diag for hostlab-sockstat's sock_diag dumps,
// and for hostlab-link's link conditions sch_netem, with ifb, sch_ingress,
// cls_matchall and act_mirred to condition received frames); a missing one
// (or one built in) is skipped, not an error.
var DefaultOptionalModules = []string{"af_packet", "tcp_diag", "sch_netem", "ifb", "sch_ingress", "cls_matchall", "act_mirred"}

// moduleSuffixes are the file name endings of module files, most common first.
var moduleSuffixes = []string{".ko", ".ko.xz", ".ko.gz", ".ko.zst"}

// kmod is one resolved module with its uncompressed contents.
type kmod struct {
	name string // canonical name, '-' written as '_'
	path string // file in the modules tree
	data []byte // uncompressed .ko
}

// moduleName normalises a module or file name: directory and suffix
// stripped, '-' replaced by '_' (the kernel treats them as equal).
func moduleName(s string) string {
	s = filepath.Base(s)
	for _, suf := range moduleSuffixes {
		if strings.HasSuffix(s, suf) {
			s = strings.TrimSuffix(s, suf)
			break
		}
	}
	return strings.ReplaceAll(s, "-", "_")
}

// resolveModules returns want plus their dependencies from the modules tree
// dir (lib/modules/<release>), dependencies first and without duplicates.
// Modules listed in dir/modules.builtin are skipped; missing optional
// modules are skipped; a missing required one yields ErrModuleNotFound.
// A non-empty release is checked against each module's vermagic.
func resolveModules(ctx context.Context, dir, release string, want, optional []string) ([]kmod, error) {
	index, err := indexModules(dir)
	if err != nil {
		return nil, err
	}
	builtin, err := readBuiltin(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return nil, err
	}
	r := &resolver{ctx: ctx, dir: dir, release: release, index: index, builtin: builtin,
		state: make(map[string]int)}
	for _, name := range want {
		if err := r.visit(moduleName(name), "", false); err != nil {
			return nil, err
		}
	}
	for _, name := range optional {
		if err := r.visit(moduleName(name), "", true); err != nil {
			return nil, err
		}
	}
	return r.order, nil
}

// resolver walks module dependencies depth first.
type resolver struct {
	ctx     context.Context
	dir     string
	release string
	index   map[string]string // module name -> file
	builtin map[string]bool
	state   map[string]int // 1 visiting, 2 done
	order   []kmod
}

// visit appends name after its dependencies; by names the requiring module.
func (r *resolver) visit(name, by string, optional bool) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	switch {
	case r.builtin[name] || r.state[name] == 2:
		return nil
	case r.state[name] == 1:
		return fmt.Errorf("module %s: dependency cycle via %s", name, by)
	}
	file, ok := r.index[name]
	if !ok {
		if optional {
			return nil
		}
		if by != "" {
			return fmt.Errorf("%w: %s (needed by %s) in %s", ErrModuleNotFound, name, by, r.dir)
		}
		return fmt.Errorf("%w: %s in %s", ErrModuleNotFound, name, r.dir)
	}
	r.state[name] = 1
	data, err := readModule(r.ctx, file)
	if err != nil {
		return err
	}
	info, err := modinfo(data)
	if err != nil {
		return fmt.Errorf("read modinfo of %s: %w", file, err)
	}
	if vm := strings.Fields(info["vermagic"]); r.release != "" && len(vm) > 0 && vm[0] != r.release {
		return fmt.Errorf("module %s was built for kernel %s, not %s", file, vm[0], r.release)
	}
	for _, dep := range strings.Split(info["depends"], ",") {
		if dep = strings.TrimSpace(dep); dep != "" {
			if err := r.visit(moduleName(dep), name, false); err != nil {
				return err
			}
		}
	}
	r.state[name] = 2
	r.order = append(r.order, kmod{name: name, path: file, data: data})
	return nil
}

// isModuleFile reports whether a file name has a module suffix.
func isModuleFile(name string) bool {
	for _, suf := range moduleSuffixes {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// indexModules maps module names to files below dir. When a name occurs
// twice, the lexically first path wins.
func indexModules(dir string) (map[string]string, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("modules dir %s: not a directory", dir)
	}
	index := make(map[string]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && isModuleFile(d.Name()) {
			if name := moduleName(d.Name()); index[name] == "" {
				index[name] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	return index, nil
}

// readBuiltin returns the module names listed in a modules.builtin file;
// a missing file means none are known to be built in.
func readBuiltin(path string) (map[string]bool, error) {
	builtin := make(map[string]bool)
	f, err := os.Open(path)
	if isNotExist(err) {
		return builtin, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			builtin[moduleName(line)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return builtin, nil
}

// readModule returns the uncompressed contents of a .ko, .ko.xz or .ko.gz.
func readModule(ctx context.Context, path string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".ko.xz"):
		var out, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "xz", "-dc", "--", path)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("decompress %s: %w: %s", path, err, strings.TrimSpace(stderr.String()))
		}
		return out.Bytes(), nil
	case strings.HasSuffix(path, ".ko.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", path, err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", path, err)
		}
		return data, nil
	}
	return nil, fmt.Errorf("module %s: unsupported compression (use .ko, .ko.xz or .ko.gz; "+
		"for zstd run: find DIR -name '*.ko.zst' -exec zstd -d --rm {} +)", path)
}

// modinfo parses the NUL-separated key=value strings of a module's .modinfo
// section. Repeated keys keep their last value.
func modinfo(ko []byte) (map[string]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, err
	}
	info := make(map[string]string)
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			info[k] = v
		}
	}
	return info, nil
}
