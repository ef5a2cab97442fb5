package provision

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// pruneUnresolvable deletes modules from the tree dir whose dependencies
// (transitively) are neither in the tree nor built in, so the pruned tree
// kept in the cache stays self-contained. It returns how many it deleted.
func pruneUnresolvable(ctx context.Context, dir string) (int, error) {
	index, err := indexModules(dir)
	if err != nil {
		return 0, err
	}
	builtin, err := readBuiltin(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return 0, err
	}
	deps := make(map[string][]string, len(index))
	for name, path := range index {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		data, err := readModule(ctx, path)
		if err != nil {
			return 0, err
		}
		info, err := modinfo(data)
		if err != nil {
			return 0, fmt.Errorf("read modinfo of %s: %w", path, err)
		}
		for _, d := range strings.Split(info["depends"], ",") {
			if d = strings.TrimSpace(d); d != "" {
				deps[name] = append(deps[name], moduleName(d))
			}
		}
	}
	removed := 0
	for changed := true; changed; {
		changed = false
		for name, path := range index {
			for _, d := range deps[name] {
				if index[d] == "" && !builtin[d] {
					if err := os.Remove(path); err != nil {
						return removed, fmt.Errorf("prune module %s: %w", name, err)
					}
					delete(index, name)
					removed++
					changed = true
					break
				}
			}
		}
	}
	return removed, nil
}
