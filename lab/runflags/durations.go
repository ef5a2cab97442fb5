package runflags

import (
	"fmt"
	"slices"

	"github.com/spf13/pflag"
)

// durationRule says which values of a duration flag make sense and what to
// give instead.
type durationRule struct {
	// zeroOK says 0 is a setting of its own (off, or the scenario's
	// default); otherwise the value must be positive.
	zeroOK bool
	// fix tells the user what to give instead.
	fix string
}

// durationRules are the duration flags of up, run and bench, by name.
var durationRules = map[string]durationRule{
	"grace":        {fix: "give the guest init's SIGTERM → SIGKILL grace, e.g. --grace 5s (the default)"},
	"interval":     {fix: "give the pause between the client's lines, e.g. --interval 1s (the default; hang-server's between flood blocks: 20ms), or leave it out for the scenario's default"},
	"down":         {fix: "give how long power-cycle keeps the server off, or partition the link cut, e.g. --down 5s (the default)"},
	"user-timeout": {zeroOK: true, fix: "give e.g. --user-timeout 6s, or 0 (the default) to leave TCP_USER_TIMEOUT unset"},
	"read-timeout": {zeroOK: true, fix: "give e.g. --read-timeout 10s, or 0 (the default) for no read deadline"},
	"max-wait":     {zeroOK: true, fix: "give e.g. --max-wait 2m, or 0 (the default) to watch for the scenario's own bound"},
}

// CheckDurations refuses duration flags set in fs with values that make no
// sense: negative ones, and zero where zero is not a setting of its own.
// The error is one line naming the flag and the fix.
func CheckDurations(fs *pflag.FlagSet) error {
	names := make([]string, 0, len(durationRules))
	for name := range durationRules {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if fs.Lookup(name) == nil || !fs.Changed(name) {
			continue
		}
		d, err := fs.GetDuration(name)
		if err != nil {
			return err
		}
		rule := durationRules[name]
		switch {
		case d < 0:
			return fmt.Errorf("--%s %s: must not be negative; %s", name, d, rule.fix)
		case d == 0 && !rule.zeroOK:
			return fmt.Errorf("--%s %s: must be positive; %s", name, d, rule.fix)
		}
	}
	return nil
}
