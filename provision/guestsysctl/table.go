package guestsysctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Paths in the guest.
const (
	// ProcRoot is the root of the sysctl tree.
	ProcRoot = "/proc/sys"
	// BaselinePath is the guest's baseline file.
	BaselinePath = "/run/hostlab/sysctl.baseline"
)

// ErrBadKey is returned for a key that is not a dotted sysctl name.
var ErrBadKey = errors.New("bad sysctl key")

// ErrNoBaseline is returned when the guest has no baseline file (its init
// predates hostlab-sysctl, or the snapshot failed at boot).
var ErrNoBaseline = errors.New("no sysctl baseline")

// Values maps dotted sysctl keys to values in normalised form.
type Values map[string]string

// Change is one key's value before and after hostlab-sysctl wrote it.
type Change struct {
	// Was is the value found.
	Was string `json:"was"`
	// Now is the value read back after the write.
	Now string `json:"now"`
}

// ApplyReport is what hostlab-sysctl apply prints.
type ApplyReport struct {
	// Baseline is the baseline value of every key that differs from its
	// baseline after the apply: the applied keys and any key the kernel
	// changed along with them.
	Baseline Values `json:"baseline"`
	// Restored are the keys found away from the baseline (leftovers of an
	// earlier run) and restored before the apply.
	Restored map[string]Change `json:"restored"`
	// Applied are the applied keys as read back.
	Applied Values `json:"applied"`
}

// RestoreReport is what hostlab-sysctl restore prints.
type RestoreReport struct {
	// Restored are the keys found away from the baseline and restored.
	Restored map[string]Change `json:"restored"`
}

// CheckKey reports whether key is a dotted sysctl name that maps to a file
// below the sysctl root: at least two components of letters, digits, '_'
// and '-' (so no "/", no empty component, no "..").
func CheckKey(key string) error {
	dots, last := 0, -1
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '.':
			if i == last+1 {
				return badKey(key)
			}
			dots, last = dots+1, i
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return badKey(key)
		}
	}
	if dots == 0 || last == len(key)-1 {
		return badKey(key)
	}
	return nil
}

func badKey(key string) error {
	return fmt.Errorf("%w %q: want dotted components of letters, digits, '_' and '-', e.g. net.ipv4.tcp_retries2", ErrBadKey, key)
}

// Normalise returns v's whitespace-separated fields joined by one space, the
// form in which values are compared and written.
func Normalise(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

// Table is a sysctl tree and the baseline file kept for it.
type Table struct {
	// Root is the sysctl tree, ProcRoot in a guest.
	Root string
	// Baseline is the baseline file, BaselinePath in a guest.
	Baseline string
	// Wait is how long LoadBaseline waits for the init's snapshot to
	// appear (it is taken in the background while the guest boots).
	Wait time.Duration
	// readFile reads a sysctl file, opened read-write when rw is set; nil
	// means readSysctl (tests put procfs's permission rules in front).
	readFile func(path string, rw bool) ([]byte, error)
}

// baselineWait is how long hostlab-sysctl waits for the init's snapshot.
const baselineWait = time.Minute

// Guest returns the guest's table: ProcRoot with its baseline at
// BaselinePath.
func Guest() Table {
	return Table{Root: ProcRoot, Baseline: BaselinePath, Wait: baselineWait}
}

// path returns the file of a checked key.
func (t Table) path(key string) string {
	return filepath.Join(t.Root, strings.ReplaceAll(key, ".", "/"))
}

// Read returns key's current value in normalised form.
func (t Table) Read(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return t.read(key)
}

func (t Table) read(key string) (string, error) {
	return t.readPath(key, t.path(key), false)
}

// readPath reads the file of key at p; rw opens it read-write, which procfs
// allows only for a sysctl root may also write.
func (t Table) readPath(key, p string, rw bool) (string, error) {
	read := t.readFile
	if read == nil {
		read = readSysctl
	}
	b, err := read(p, rw)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, bare(err))
	}
	return Normalise(string(b)), nil
}

// readSysctl reads a file in as few system calls as procfs allows: open,
// one read (a sysctl hands its whole value to a large enough read; a short
// read is the end), close.
func readSysctl(p string, rw bool) ([]byte, error) {
	flag := os.O_RDONLY
	if rw {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(p, flag, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 0, 4096)
	for {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF) || (err == nil && len(buf) < cap(buf)):
			return buf, nil
		case err != nil:
			return nil, err
		}
		buf = slices.Grow(buf, cap(buf))
	}
}

// write writes value, normalised, to key, in one write as sysctl(8) does.
func (t Table) write(key, value string) error {
	f, err := os.OpenFile(t.path(key), os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		_, err = f.Write([]byte(Normalise(value)))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("write %s=%q: %w", key, Normalise(value), bare(err))
	}
	return nil
}

// bare strips the path from a file error: messages name the key instead.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// exists checks that key names a sysctl file (not a directory).
func (t Table) exists(key string) error {
	fi, err := os.Stat(t.path(key))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no sysctl %s (%s)", key, t.path(key))
	case err != nil:
		return fmt.Errorf("sysctl %s: %w", key, err)
	case fi.IsDir():
		return fmt.Errorf("sysctl %s is a directory, not a value", key)
	}
	return nil
}

// Scan returns every readable and writable value below Root/dir (e.g.
// "net"), keyed in dotted form. Write-only and read-only files (those that
// will not open read-write: procfs applies a sysctl's mode to root too),
// files that fail to read and names that contain a dot (no dotted key can
// name them) are left out.
func (t Table) Scan(dir string) (Values, error) {
	vals := Values{}
	base := filepath.Join(t.Root, dir)
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == base {
				return err
			}
			return nil // an unreadable directory: leave it out
		}
		rel, _ := filepath.Rel(t.Root, p)
		if p != base && strings.Contains(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		key := strings.ReplaceAll(rel, string(filepath.Separator), ".")
		if CheckKey(key) != nil {
			return nil
		}
		v, err := t.readPath(key, p, true)
		if err != nil {
			return nil
		}
		vals[key] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", base, err)
	}
	return vals, nil
}

// SaveBaseline snapshots the baseline — every value Scan finds below
// Root/net, plus the extra keys (the boot-time sysctls) — into the baseline
// file and returns how many values it holds. A missing extra key is an
// error, but the rest is saved; when nothing can be saved, the error is
// left beside the baseline file (".failed") for LoadBaseline to report.
func (t Table) SaveBaseline(extra []string) (int, error) {
	vals, err := t.Scan("net")
	if err != nil {
		_ = os.MkdirAll(filepath.Dir(t.Baseline), 0o755)
		_ = os.WriteFile(t.Baseline+".failed", []byte(err.Error()+"\n"), 0o644)
		return 0, err
	}
	var errs []error
	for _, k := range extra {
		if _, ok := vals[k]; ok {
			continue
		}
		v, err := t.Read(k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vals[k] = v
	}
	if err := t.saveBaseline(vals); err != nil {
		return 0, err
	}
	return len(vals), errors.Join(errs...)
}

// LoadBaseline reads the baseline file, waiting up to t.Wait for the
// init's snapshot to appear.
func (t Table) LoadBaseline() (Values, error) {
	deadline := time.Now().Add(t.Wait)
	b, err := os.ReadFile(t.Baseline)
	for errors.Is(err, fs.ErrNotExist) {
		if msg, ferr := os.ReadFile(t.Baseline + ".failed"); ferr == nil {
			return nil, fmt.Errorf("%w: the init's snapshot failed: %s", ErrNoBaseline, strings.TrimSpace(string(msg)))
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("%w at %s after %s: the guest's init did not snapshot one (a lab booted by an older hostlab: take it down and up again)", ErrNoBaseline, t.Baseline, t.Wait)
		}
		time.Sleep(50 * time.Millisecond)
		b, err = os.ReadFile(t.Baseline)
	}
	if err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	var vals Values
	if err := json.Unmarshal(b, &vals); err != nil {
		return nil, fmt.Errorf("baseline %s: %w", t.Baseline, err)
	}
	if vals == nil {
		vals = Values{}
	}
	return vals, nil
}

// saveBaseline writes vals to the baseline file atomically.
func (t Table) saveBaseline(vals Values) error {
	b, err := json.MarshalIndent(vals, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(t.Baseline), 0o755); err != nil {
		return fmt.Errorf("save baseline: %w", err)
	}
	tmp := t.Baseline + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save baseline: %w", err)
	}
	if err := os.Rename(tmp, t.Baseline); err != nil {
		return fmt.Errorf("save baseline: %w", err)
	}
	return nil
}

// restorePasses bounds the passes over the baseline: writing one key can
// change another (base_reachable_time and base_reachable_time_ms,
// conf.all.forwarding and every interface's), so restore goes over them
// again until nothing differs.
const restorePasses = 3

// restore writes the baseline value of every key that differs from it and
// returns what it changed. Keys gone from the tree (an interface removed)
// are skipped. It fails if a key cannot be written or still differs.
func (t Table) restore(base Values) (map[string]Change, error) {
	keys := sortedKeys(base)
	restored := map[string]Change{}
	var errs []error
	for pass := 0; pass < restorePasses; pass++ {
		errs = errs[:0]
		wrote := false
		for _, k := range keys {
			cur, err := t.read(k)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if cur == base[k] {
				continue
			}
			if _, seen := restored[k]; !seen {
				restored[k] = Change{Was: cur}
			}
			if err := t.write(k, base[k]); err != nil {
				errs = append(errs, fmt.Errorf("restore: %w", err))
				continue
			}
			wrote = true
		}
		if !wrote {
			break
		}
	}
	for k, c := range restored {
		now, err := t.read(k)
		if err != nil {
			errs = append(errs, err)
		}
		c.Now = now
		restored[k] = c
		if err == nil && now != base[k] {
			errs = append(errs, fmt.Errorf("restore %s: wrote %q, reads back %q", k, base[k], now))
		}
	}
	return restored, errors.Join(errs...)
}

// Restore restores every key that differs from the baseline.
func (t Table) Restore() (RestoreReport, error) {
	base, err := t.LoadBaseline()
	if err != nil {
		return RestoreReport{}, err
	}
	restored, err := t.restore(base)
	return RestoreReport{Restored: restored}, err
}

// Apply checks every key of set, restores the baseline, writes set and
// reads it back. A key written for the first time that the baseline does not
// hold (outside /proc/sys/net) joins the baseline with its current value
// first, so that Restore undoes it too.
func (t Table) Apply(set Values) (ApplyReport, error) {
	rep := ApplyReport{Baseline: Values{}, Restored: map[string]Change{}, Applied: Values{}}
	keys := sortedKeys(set)
	for _, k := range keys {
		if err := CheckKey(k); err != nil {
			return rep, err
		}
		if err := t.exists(k); err != nil {
			return rep, err
		}
	}
	base, err := t.LoadBaseline()
	if err != nil {
		return rep, err
	}
	restored, err := t.restore(base)
	rep.Restored = restored
	if err != nil {
		return rep, err
	}
	added := false
	for _, k := range keys {
		if _, ok := base[k]; ok {
			continue
		}
		v, err := t.read(k)
		if err != nil {
			return rep, fmt.Errorf("%w (a key to set must be readable)", err)
		}
		base[k], added = v, true
	}
	if added {
		if err := t.saveBaseline(base); err != nil {
			return rep, err
		}
	}
	for _, k := range keys {
		if err := t.write(k, set[k]); err != nil {
			return rep, err
		}
	}
	for _, k := range keys {
		v, err := t.read(k)
		if err != nil {
			return rep, err
		}
		rep.Applied[k] = v
	}
	for _, k := range sortedKeys(base) {
		if cur, err := t.read(k); err == nil && cur != base[k] {
			rep.Baseline[k] = base[k]
		}
	}
	return rep, nil
}

// Get returns the current values of keys; keys that do not exist are left
// out.
func (t Table) Get(keys []string) (Values, error) {
	vals := Values{}
	for _, k := range keys {
		if err := CheckKey(k); err != nil {
			return nil, err
		}
		v, err := t.read(k)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		vals[k] = v
	}
	return vals, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
