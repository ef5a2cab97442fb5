package scenario

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Scenario is one fault experiment.
type Scenario struct {
	// Name is the CLI name (hostlab run NAME).
	Name string
	// Summary says in one line what is done to the server.
	Summary string
	// Property is what the scenario checks, and the expected outcome.
	Property string
	// Own names the scenario-specific options (hostlab run's long flags)
	// this scenario takes; OwnFlags lists every such option, and CheckOwn
	// refuses one given to a scenario that does not take it.
	Own []string
	// WritesPerLine is how many writes the client makes per line (0: one).
	WritesPerLine int
	// ClientFlags, when set, adds scenario-specific flags to the client's
	// command line (classic says which client: the C str_cli or the Go one).
	ClientFlags func(classic bool) []string
	// Defaults fills the scenario's own option defaults.
	Defaults func(*Options)
	// Check, when set, refuses options the scenario cannot run with.
	Check func(Options) error
	// StartsClient says the client connects only in Fault: the fault is a
	// precondition of the connect (connect-dead), so the run does not start
	// the client before it.
	StartsClient bool
	// Fault does the fault; r.markFault stamps its start and end.
	Fault func(ctx context.Context, r *Run) error
	// Expect applies rules to a run's evidence: the expectation the
	// client's observation is checked against and the further checks of
	// the mechanism. It must give Missing, never a guess, when evidence or
	// model inputs are absent.
	Expect func(ev *Evidence, k Rules) Judgement
	// Bound is how long to watch the client after the fault, from the
	// evidence so far.
	Bound func(ev *Evidence) time.Duration
	// Routed says the scenario needs a router guest between client and
	// server (a lab brought up with Routed).
	Routed bool
	// Survival, if set, reads the client's observation that its connection
	// outlived the fault (model.Survived, e.g. the first read after a
	// partition healed); Judge uses it when the client reported no error, and
	// the observation ends when it holds.
	Survival func(ev *Evidence) (Observation, bool)
	// Followup, if set, gathers more evidence after the observation, before
	// the heal, and returns it as one line.
	Followup func(ctx context.Context, r *Run) string
	// Heal repairs the server host after the observation.
	Heal func(ctx context.Context, r *Run) error
}

// Catalogue lists every scenario, in the order of UNP 5.12–5.16, then
// the ones beyond it.
var Catalogue = []Scenario{connectDead, killServer, sigpipe, hangServer, powerOff, unreachable, crashReboot, shutdown, partition}

// Lookup finds a scenario by name.
func Lookup(name string) (Scenario, error) {
	for _, s := range Catalogue {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, len(Catalogue))
	for i, s := range Catalogue {
		names[i] = s.Name
	}
	sort.Strings(names)
	return Scenario{}, fmt.Errorf("unknown scenario %q: choose one of %s (hostlab scenarios lists them)", name, strings.Join(names, ", "))
}

// ownOptions maps each scenario-specific option to whether o sets it.
func ownOptions(o Options) map[string]bool {
	return map[string]bool{
		"sigpipe-ignore": o.SigpipeIgnore,
		"reboot":         o.Reboot != "",
		"down":           o.Down != 0,
		"server-sigterm": o.ServerSigterm != "",
		"target":         o.Target != "",
		"neigh":          o.Neigh != "",
	}
}

// CheckOwn refuses scenario-specific options given to a scenario that does
// not take them (e.g. --reboot with power-off), naming who takes them, and
// options the scenario's Check refuses (e.g. --idle with hang-server), so
// hostlab run and campaign files refuse them before a lab is up.
func CheckOwn(s Scenario, o Options) error {
	for name, set := range ownOptions(o) {
		if !set || slices.Contains(s.Own, name) {
			continue
		}
		var takers []string
		for _, c := range Catalogue {
			if slices.Contains(c.Own, name) {
				takers = append(takers, c.Name)
			}
		}
		return fmt.Errorf("--%s does not apply to %s: it is for %s", name, s.Name, strings.Join(takers, ", "))
	}
	if s.Check != nil {
		return s.Check(o)
	}
	return nil
}
