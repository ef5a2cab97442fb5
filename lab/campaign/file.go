package campaign

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/hostlab/hostlab/lab/runflags"
	"github.com/hostlab/hostlab/lab/scenario"
)

// Fields are the keys a campaign file may hold.
var Fields = []string{"scenarios", "kernels", "variants", "repetitions", "budget"}

// Spec is a checked campaign file: its axes and settings.
type Spec struct {
	// Path is the file as named by the user.
	Path string
	// Dir is the folder relative paths in the file are taken from.
	Dir string
	// Scenarios are the scenarios, in file order.
	Scenarios []scenario.Scenario
	// Kernels are the guest kernels, in file order; one (the lab default,
	// linux-image-amd64) when the file names none.
	Kernels []Kernel
	// Variants are hostlab run's flags for each variant, in file order; one
	// (every default) when the file names none.
	Variants []Variant
	// Repetitions is how many times each cell of the cross product runs (1
	// when not given).
	Repetitions int
	// Budget is the detection time the user needs; 0 for none.
	Budget time.Duration
}

// Kernel is one value of the kernels axis.
type Kernel struct {
	// Written is the kernel as the file gives it: a package name, or
	// "KERNEL (modules MODULES)" for a pair.
	Written string `json:"kernel"`
	// Package is the kernel image package a package name resolved to (a
	// meta package such as linux-image-amd64 names another).
	Package string `json:"package,omitempty"`
	// Image and Modules are a pair's kernel image and modules tree,
	// absolute.
	Image   string `json:"image,omitempty"`
	Modules string `json:"modules,omitempty"`
	// Release is the kernel release the package or modules tree holds.
	Release string `json:"release"`
}

// Variant is one value of the variants axis: hostlab run's long flags.
type Variant struct {
	// Flags are the flags as written, by name: true/false, a string, or a
	// list of strings for a repeated flag.
	Flags map[string]any
	// Order lists the flag names in the order written.
	Order []string
	// Args are the flags as hostlab run takes them.
	Args []string
	// Name is a short human form, e.g. "--idle --keepalive 4s,2s,3", or
	// "defaults".
	Name string
	// Canonical is the variant in a form that does not depend on spelling
	// or order (runflags.Parsed).
	Canonical []string
	// Options are the scenario options the flags give.
	Options scenario.Options

	// node and field are where the file writes the variant, keys where
	// it writes each flag.
	node  ast.Node
	field string
	keys  map[string]ast.Node
}

// FileError is one problem in a campaign file, at the place it was
// written.
type FileError struct {
	File      string
	Line, Col int
	// Field is the path of the value, e.g. variants[1].keepalive.
	Field string
	Msg   string
}

func (e FileError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += fmt.Sprintf(":%d:%d", e.Line, e.Col)
	}
	if e.Field != "" {
		return loc + ": " + e.Field + ": " + e.Msg
	}
	return loc + ": " + e.Msg
}

// FileErrors are the problems found in a campaign file, in file order.
type FileErrors []FileError

func (es FileErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// ResolveFunc names the kernel image package a package name stands for
// (provision.ResolveKernelPackage), or refuses an unknown one.
type ResolveFunc func(ctx context.Context, pkg string) (string, error)

// ReleaseFunc is the kernel release a kernel image package holds
// (provision.PackageRelease).
type ReleaseFunc func(pkg string) (string, error)

// LoadOptions say how Load checks what a file names outside itself.
type LoadOptions struct {
	// Dir is the folder relative paths are taken from (default: the
	// file's own folder).
	Dir string
	// Resolve resolves kernel packages; required when the file names a
	// kernel package or none.
	Resolve ResolveFunc
	// Release gives a kernel image package's release.
	Release ReleaseFunc
}

// loader walks one file's syntax tree, collecting every problem.
type loader struct {
	ctx  context.Context
	file string
	opt  LoadOptions
	errs FileErrors
}

func (l *loader) fail(n ast.Node, field, format string, args ...any) {
	e := FileError{File: l.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Col = tk.Position.Line, tk.Position.Column
		}
	}
	l.errs = append(l.errs, e)
}

// Load reads and checks the campaign file at path (data, when not nil, is
// its content): every key, scenario, kernel (resolved through
// opt.Resolve), variant flag and value, as hostlab run would check them, and
// every scenario against every variant (scenario.CheckOwn). Every problem
// found is returned as FileErrors naming file, line and field.
func Load(ctx context.Context, path string, data []byte, opt LoadOptions) (*Spec, error) {
	if data == nil {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("read campaign file: %w", err)
		}
	}
	if opt.Dir == "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		opt.Dir = filepath.Dir(abs)
	}
	l := &loader{ctx: ctx, file: path, opt: opt}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil && ye.GetToken().Position != nil {
			p := ye.GetToken().Position
			return nil, FileErrors{{File: path, Line: p.Line, Col: p.Column, Msg: ye.GetMessage()}}
		}
		return nil, FileErrors{{File: path, Msg: err.Error()}}
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		if len(f.Docs) > 1 {
			return nil, FileErrors{{File: path, Line: 1, Col: 1, Msg: "the file holds several YAML documents; a campaign is one"}}
		}
		return nil, FileErrors{{File: path, Line: 1, Col: 1, Msg: "the file is empty; a campaign needs at least scenarios: [NAME, …]"}}
	}
	spec := l.spec(f.Docs[0].Body)
	spec.Path, spec.Dir = path, opt.Dir
	if len(l.errs) > 0 {
		slices.SortStableFunc(l.errs, func(a, b FileError) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Col - b.Col
		})
		return nil, l.errs
	}
	return spec, nil
}

// unwrap removes anchors and tags around a value.
func unwrap(n ast.Node) ast.Node {
	for {
		switch x := n.(type) {
		case *ast.AnchorNode:
			n = x.Value
		case *ast.TagNode:
			n = x.Value
		default:
			return n
		}
	}
}

// mapping returns a mapping's key/value pairs, or nil and false.
func mapping(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch x := unwrap(n).(type) {
	case *ast.MappingNode:
		return x.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{x}, true
	}
	return nil, false
}

// sequence returns a sequence's items, or nil and false.
func sequence(n ast.Node) ([]ast.Node, bool) {
	if s, ok := unwrap(n).(*ast.SequenceNode); ok {
		return s.Values, true
	}
	return nil, false
}

// scalar returns a scalar's text as written (a string's value, a number's
// or bool's literal) and whether it was a string.
func scalar(n ast.Node) (text string, isString, ok bool) {
	switch x := unwrap(n).(type) {
	case *ast.StringNode:
		return x.Value, true, true
	case *ast.LiteralNode:
		return x.Value.Value, true, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return x.GetToken().Value, false, true
	}
	return "", false, false
}

// kind names a node's kind for error messages.
func kind(n ast.Node) string {
	switch unwrap(n).(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode, nil:
		return "empty"
	case *ast.AliasNode:
		return "an alias (write the value out)"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.IntegerNode, *ast.FloatNode:
		return "a number"
	}
	return "a string"
}

// keyName is a mapping key's text.
func keyName(kv *ast.MappingValueNode) string {
	if s, _, ok := scalar(kv.Key); ok {
		return s
	}
	return kv.Key.String()
}

func (l *loader) spec(body ast.Node) *Spec {
	spec := &Spec{Repetitions: 1}
	kvs, ok := mapping(body)
	if !ok {
		l.fail(body, "", "a campaign is a mapping with %s; found %s", strings.Join(Fields, ", "), kind(body))
		return spec
	}
	seen := map[string]bool{}
	for _, kv := range kvs {
		name := keyName(kv)
		seen[name] = true
		switch name {
		case "scenarios":
			spec.Scenarios = l.scenarios(kv.Value)
		case "kernels":
			spec.Kernels = l.kernels(kv.Value)
		case "variants":
			spec.Variants = l.variants(kv.Value)
		case "repetitions":
			spec.Repetitions = l.repetitions(kv.Value)
		case "budget":
			spec.Budget = l.budget(kv.Value)
		default:
			l.fail(kv.Key, name, "unknown field; a campaign has %s", strings.Join(Fields, ", "))
		}
	}
	if !seen["scenarios"] {
		l.fail(body, "scenarios", "missing: name the scenarios to run, e.g. scenarios: [power-off] (hostlab scenarios lists them)")
	}
	if !seen["kernels"] {
		spec.Kernels = []Kernel{l.packageKernel(body, "kernels", "linux-image-amd64")}
	}
	if !seen["variants"] {
		p, err := runflags.Parse(nil, l.opt.Dir)
		if err != nil {
			l.fail(body, "variants", "%v", err)
		}
		spec.Variants = []Variant{{Flags: map[string]any{}, Name: "defaults", Options: p.Options, node: body, field: "variants"}}
	}
	if len(spec.Scenarios) > 0 && len(spec.Variants) > 0 {
		l.crossCheck(spec)
	}
	return spec
}

// list returns the items of a field that must be a non-empty list.
func (l *loader) list(n ast.Node, field, example string) []ast.Node {
	items, ok := sequence(n)
	if !ok {
		l.fail(n, field, "want a list, e.g. %s; found %s", example, kind(n))
		return nil
	}
	if len(items) == 0 {
		l.fail(n, field, "the list is empty; give at least one, e.g. %s", example)
	}
	return items
}

func (l *loader) scenarios(n ast.Node) []scenario.Scenario {
	var out []scenario.Scenario
	first := map[string]int{}
	for i, it := range l.list(n, "scenarios", "[power-off, kill-server]") {
		field := fmt.Sprintf("scenarios[%d]", i)
		name, isStr, ok := scalar(it)
		if !ok || !isStr {
			l.fail(it, field, "want a scenario name; found %s", kind(it))
			continue
		}
		s, err := scenario.Lookup(name)
		if err != nil {
			l.fail(it, field, "%v", err)
			continue
		}
		if j, dup := first[name]; dup {
			l.fail(it, field, "%s is listed twice (also scenarios[%d]); use repetitions to run it more often", name, j)
			continue
		}
		first[name] = i
		out = append(out, s)
	}
	return out
}

func (l *loader) kernels(n ast.Node) []Kernel {
	var out []Kernel
	first := map[string]int{}
	for i, it := range l.list(n, "kernels", "[linux-image-amd64, linux-image-6.12-amd64]") {
		field := fmt.Sprintf("kernels[%d]", i)
		var k Kernel
		if name, isStr, ok := scalar(it); ok && isStr {
			k = l.packageKernel(it, field, name)
		} else if kvs, ok := mapping(it); ok {
			k = l.pairKernel(it, kvs, field)
		} else {
			l.fail(it, field, "want a Debian kernel package (linux-image-…) or {kernel: PATH, modules: PATH}; found %s", kind(it))
			continue
		}
		if k.Release == "" {
			continue // reported
		}
		key := k.Package + "\x00" + k.Image
		if j, dup := first[key]; dup {
			l.fail(it, field, "%s is the same kernel as kernels[%d] (%s)", k.Written, j, orPkg(k))
			continue
		}
		first[key] = i
		out = append(out, k)
	}
	return out
}

// orPkg names a kernel by its package, or its image.
func orPkg(k Kernel) string {
	if k.Package != "" {
		return k.Package
	}
	return k.Image
}

// packageKernel resolves a kernel package name.
func (l *loader) packageKernel(n ast.Node, field, name string) Kernel {
	k := Kernel{Written: name}
	if l.opt.Resolve == nil || l.opt.Release == nil {
		l.fail(n, field, "kernel packages cannot be resolved here")
		return k
	}
	pkg, err := l.opt.Resolve(l.ctx, name)
	if err != nil {
		l.fail(n, field, "%v", err)
		return k
	}
	rel, err := l.opt.Release(pkg)
	if err != nil {
		l.fail(n, field, "%v", err)
		return k
	}
	k.Package, k.Release = pkg, rel
	return k
}

// pairKernel checks a {kernel: PATH, modules: PATH} pair.
func (l *loader) pairKernel(n ast.Node, kvs []*ast.MappingValueNode, field string) Kernel {
	var img, mods string
	var imgNode, modNode ast.Node
	for _, kv := range kvs {
		v, isStr, ok := scalar(kv.Value)
		switch name := keyName(kv); {
		case name != "kernel" && name != "modules":
			l.fail(kv.Key, field+"."+name, "unknown field; a kernel of your own is {kernel: PATH, modules: PATH}")
		case !ok || !isStr || v == "":
			l.fail(kv.Value, field+"."+name, "want a path; found %s", kind(kv.Value))
		case name == "kernel":
			img, imgNode = v, kv.Value
		default:
			mods, modNode = v, kv.Value
		}
	}
	if img == "" || mods == "" {
		if imgNode != nil || modNode != nil || len(kvs) == 0 {
			l.fail(n, field, "a kernel of your own needs both kernel: PATH (vmlinux or bzImage) and modules: PATH (its lib/modules/RELEASE)")
		}
		return Kernel{}
	}
	k := Kernel{Written: img + " (modules " + mods + ")", Image: l.path(img), Modules: l.path(mods)}
	if fi, err := os.Stat(k.Image); err != nil || fi.IsDir() {
		l.fail(imgNode, field+".kernel", "%s is not a kernel image file", k.Image)
		return Kernel{}
	}
	if fi, err := os.Stat(filepath.Join(k.Modules, "kernel")); err != nil || !fi.IsDir() {
		l.fail(modNode, field+".modules", "%s has no kernel/ folder: give the lib/modules/RELEASE folder of the kernel", k.Modules)
		return Kernel{}
	}
	k.Release = filepath.Base(k.Modules)
	return k
}

// path makes p absolute from the file's folder.
func (l *loader) path(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(l.opt.Dir, p)
}

// notVariantFlags are hostlab run's flags that are not a variant's, with
// what to do instead.
var notVariantFlags = map[string]string{
	"lab":            "the campaign brings up labs of its own",
	"out":            "run folders go under the campaign's folder",
	"json":           "every result goes to results.jsonl",
	"check":          "give --check to hostlab campaign run",
	"kernel":         "use the kernels axis",
	"kernel-package": "use the kernels axis",
	"modules":        "use the kernels axis",
	"routed":         "a scenario that needs a router gets a routed lab",
	"memory":         "give it to hostlab campaign run",
	"accel":          "give it to hostlab campaign run",
	"grace":          "give it to hostlab campaign run",
}

func (l *loader) variants(n ast.Node) []Variant {
	var out []Variant
	first := map[string]int{}
	for i, it := range l.list(n, "variants", "[{}, {user-timeout: 6s}]") {
		field := fmt.Sprintf("variants[%d]", i)
		v, ok := l.variant(it, field)
		if !ok {
			continue
		}
		key := strings.Join(v.Canonical, "\x00")
		if j, dup := first[key]; dup {
			l.fail(it, field, "the same variant as variants[%d] (%s); use repetitions to run it more often", j, out[j].Name)
			continue
		}
		first[key] = len(out)
		out = append(out, v)
	}
	return out
}

// variant checks one variant: each flag alone (so that an error points at
// its line), then all together.
func (l *loader) variant(n ast.Node, field string) (Variant, bool) {
	v := Variant{Flags: map[string]any{}, node: n, field: field, keys: map[string]ast.Node{}}
	if _, isNull := unwrap(n).(*ast.NullNode); isNull {
		l.fail(n, field, "empty; write {} for every default")
		return v, false
	}
	kvs, ok := mapping(n)
	if !ok {
		l.fail(n, field, "want a mapping of hostlab run's flags, e.g. {idle: true, keepalive: \"4s,2s,3\"}; found %s", kind(n))
		return v, false
	}
	good := true
	var names []string
	for _, kv := range kvs {
		name := keyName(kv)
		f := field + "." + name
		if strings.HasPrefix(name, "-") {
			l.fail(kv.Key, f, "write the flag without dashes: %s", strings.TrimLeft(name, "-"))
			good = false
			continue
		}
		if why, ok := notVariantFlags[name]; ok {
			l.fail(kv.Key, f, "--%s is not a variant's flag: %s", name, why)
			good = false
			continue
		}
		args, value, ok := l.flagArgs(kv.Value, f, name)
		if !ok {
			good = false
			continue
		}
		if _, err := runflags.Parse(args, l.opt.Dir); err != nil {
			at := kv.Value
			if strings.HasPrefix(err.Error(), "unknown flag") {
				at = kv.Key
				err = fmt.Errorf("%w (hostlab run --help lists the flags: %s)", err, strings.Join(runflags.Names(), ", "))
			}
			l.fail(at, f, "%v", err)
			good = false
			continue
		}
		v.Flags[name] = value
		v.keys[name] = kv.Key
		v.Order = append(v.Order, name)
		v.Args = append(v.Args, args...)
		names = append(names, humanFlag(name, value))
	}
	if !good {
		return v, false
	}
	p, err := runflags.Parse(v.Args, l.opt.Dir)
	if err != nil {
		l.fail(n, field, "%v", err)
		return v, false
	}
	v.Canonical, v.Options = p.Canonical, p.Options
	v.Name = strings.Join(names, " ")
	if v.Name == "" {
		v.Name = "defaults"
	}
	return v, true
}

// flagArgs turns one flag's value into hostlab run's arguments: true is
// --name, false --name=false, a string or number --name=VALUE, a list one
// --name=ITEM per item.
func (l *loader) flagArgs(n ast.Node, field, name string) ([]string, any, bool) {
	switch x := unwrap(n).(type) {
	case *ast.BoolNode:
		if x.Value {
			return []string{"--" + name}, true, true
		}
		return []string{"--" + name + "=false"}, false, true
	case *ast.SequenceNode:
		if len(x.Values) == 0 {
			l.fail(n, field, "the list is empty; drop the flag, or give values")
			return nil, nil, false
		}
		var args, vals []string
		for i, it := range x.Values {
			s, _, ok := scalar(it)
			if !ok {
				l.fail(it, fmt.Sprintf("%s[%d]", field, i), "want a value; found %s", kind(it))
				return nil, nil, false
			}
			args, vals = append(args, "--"+name+"="+s), append(vals, s)
		}
		return args, vals, true
	}
	s, _, ok := scalar(n)
	if !ok {
		l.fail(n, field, "want a value (true, a string, a duration such as 6s, or a list for a repeated flag); found %s", kind(n))
		return nil, nil, false
	}
	return []string{"--" + name + "=" + s}, s, true
}

// humanFlag writes a flag as typed on a command line.
func humanFlag(name string, value any) string {
	switch v := value.(type) {
	case bool:
		if v {
			return "--" + name
		}
		return "--" + name + "=false"
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = humanFlag(name, s)
		}
		return strings.Join(parts, " ")
	case string:
		if v == "" || strings.ContainsAny(v, " \t'\"") {
			return "--" + name + " " + strconv.Quote(v)
		}
		return "--" + name + " " + v
	}
	return "--" + name
}

func (l *loader) repetitions(n ast.Node) int {
	s, isStr, ok := scalar(n)
	r, err := strconv.Atoi(s)
	if !ok || isStr || err != nil {
		l.fail(n, "repetitions", "want a whole number of repetitions, e.g. 3; found %s", kind(n))
		return 1
	}
	if r < 1 {
		l.fail(n, "repetitions", "%d: want at least 1", r)
		return 1
	}
	return r
}

func (l *loader) budget(n ast.Node) time.Duration {
	s, _, ok := scalar(n)
	if !ok {
		l.fail(n, "budget", "want a duration such as 20s; found %s", kind(n))
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		l.fail(n, "budget", "%q: want a duration with its unit, e.g. 20s or 2m", s)
		return 0
	case d <= 0:
		l.fail(n, "budget", "%s: must be positive (leave budget out for none)", d)
		return 0
	}
	return d
}

// crossCheck refuses combinations that cannot run: a scenario-specific
// flag given to a scenario that does not take it, a router sysctl for a
// scenario without a router.
func (l *loader) crossCheck(spec *Spec) {
	for _, v := range spec.Variants {
		for _, s := range spec.Scenarios {
			if err := scenario.CheckOwn(s, v.Options); err != nil {
				at, field := v.node, v.field
				for name, key := range v.keys {
					if strings.HasPrefix(err.Error(), "--"+name+" ") {
						at, field = key, v.field+"."+name
					}
				}
				l.fail(at, field, "%v (the campaign runs every variant with every scenario)", err)
				continue
			}
			if s.Routed {
				continue
			}
			for _, sc := range v.Options.Sysctls {
				if strings.HasPrefix(sc, "router:") {
					at, field := v.node, v.field
					if k, ok := v.keys["sysctl"]; ok {
						at, field = k, v.field+".sysctl"
					}
					l.fail(at, field, "%s: %s runs in a lab without a router (only unreachable has one)", sc, s.Name)
					break
				}
			}
		}
	}
}
