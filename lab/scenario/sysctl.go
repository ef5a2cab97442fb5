package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/provision/guestsysctl"
	"github.com/hostlab/hostlab/vms"
)

// relevantSysctls are read back from both guests into the run's config.
var relevantSysctls = []string{
	"net.ipv4.tcp_retries1", "net.ipv4.tcp_retries2", "net.ipv4.tcp_syn_retries", "net.ipv4.tcp_synack_retries",
	"net.ipv4.tcp_syn_linear_timeouts", "net.ipv4.tcp_invalid_ratelimit",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_orphan_retries", "net.ipv4.tcp_early_retrans",
	"net.ipv4.tcp_thin_linear_timeouts", "net.ipv4.neigh.default.gc_stale_time",
	"net.ipv4.neigh.default.base_reachable_time_ms", "net.ipv4.neigh.default.mcast_solicit",
	"net.ipv4.neigh.default.ucast_solicit", "net.ipv4.neigh.default.retrans_time_ms",
	"net.ipv4.ip_forward",
}

// SysctlChange is one key's value before and after hostlab-sysctl restored
// it, as recorded in result.json.
type SysctlChange = guestsysctl.Change

// restoreTimeout bounds the end-of-run restore, which runs even when the
// run's context is done.
const restoreTimeout = 30 * time.Second

// sysctlRecord is what a run learnt of its guests' sysctls, by role, beside
// the values in force (Run.sysctls).
type sysctlRecord struct {
	baseline       map[string]map[string]string
	overrides      map[string]map[string]string
	restoredBefore map[string]map[string]SysctlChange
	restoredAfter  map[string]map[string]SysctlChange
}

// fill copies the record into a result's config.
func (s sysctlRecord) fill(c *RunConfig) {
	c.SysctlBaseline, c.SysctlOverrides = s.baseline, s.overrides
	c.SysctlRestoredBefore, c.SysctlRestoredAfter = s.restoredBefore, s.restoredAfter
}

// sysctlOverrides groups the run's --sysctl values by role.
func (o Options) sysctlOverrides() map[string]map[string]string {
	by := map[string]map[string]string{}
	for _, s := range o.Sysctls {
		role, key, value, _ := ParseSysctl(s)
		if by[role] == nil {
			by[role] = map[string]string{}
		}
		by[role][key] = value
	}
	return by
}

// applySysctls brings every guest to its baseline and applies the run's
// --sysctl overrides on top, as data on hostlab-sysctl apply's stdin (a guest
// without overrides gets none, so leftovers of an earlier, killed run are
// undone there too). It then reads back each guest's kernel release and
// its relevant and overridden sysctls into the run's config.
func (r *Run) applySysctls(ctx context.Context) error {
	over := r.Opt.sysctlOverrides()
	for role := range over {
		if _, err := r.cfg.Lab.State.Guest(role); err != nil {
			return fmt.Errorf("--sysctl %s:KEY=VALUE: lab %s has no %s guest (a router needs a lab brought up with --routed)", role, r.cfg.Lab.Name(), role)
		}
	}
	r.sysctlRec = sysctlRecord{baseline: map[string]map[string]string{}, overrides: over}
	rec := &r.sysctlRec
	for _, g := range r.cfg.Lab.State.Guests {
		role := g.Role
		set := over[role]
		if set == nil {
			set = map[string]string{}
		}
		in, err := json.Marshal(set)
		if err != nil {
			return err
		}
		var rep guestsysctl.ApplyReport
		if err := r.sysctlCall(ctx, role, "apply", in, &rep); err != nil {
			if len(set) > 0 {
				return fmt.Errorf("apply --sysctl: %w", err)
			}
			return err
		}
		if len(rep.Restored) > 0 {
			if rec.restoredBefore == nil {
				rec.restoredBefore = map[string]map[string]SysctlChange{}
			}
			rec.restoredBefore[role] = rep.Restored
			r.log.Info("sysctls restored to the baseline before the run (leftovers)", "role", role, "keys", len(rep.Restored))
		}
		keys := append([]string(nil), relevantSysctls...)
		for k := range set {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		// The keys passed ParseSysctl's strict check (or are relevantSysctls):
		// safe as words of a command line.
		out, err := r.sh(ctx, role, "uname -r && "+guestsysctl.Name+" get "+strings.Join(keys, " "))
		if err != nil {
			return err
		}
		release, vals, _ := strings.Cut(out, "\n")
		inForce := map[string]string{}
		if err := json.Unmarshal([]byte(vals), &inForce); err != nil {
			return fmt.Errorf("%s get on %s: %w", guestsysctl.Name, role, err)
		}
		r.kernel[role] = strings.TrimSpace(release)
		r.sysctls[role] = inForce
		rec.baseline[role] = map[string]string{}
		for _, k := range keys {
			if v, ok := rep.Baseline[k]; ok {
				rec.baseline[role][k] = v
			} else if v, ok := inForce[k]; ok {
				rec.baseline[role][k] = v
			}
		}
	}
	for _, s := range r.Opt.Sysctls {
		role, key, value, _ := ParseSysctl(s)
		if got, ok := r.sysctls[role][key]; !ok || got != guestsysctl.Normalise(value) {
			return fmt.Errorf("--sysctl %s did not hold: the guest reads back %q", s, got)
		}
	}
	return nil
}

// restoreSysctls leaves every guest that is up at its baseline. It runs at
// the end of every run, failed ones too, under its own deadline; a guest
// that is not running is skipped (it boots at its baseline) with a note.
func (r *Run) restoreSysctls(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	hv := r.cfg.Lab.Hypervisor()
	for _, g := range r.cfg.Lab.State.Guests {
		st, err := hv.State(ctx, g.Domain)
		if err != nil {
			r.note(fmt.Sprintf("sysctl restore: %s: %v", g.Role, err))
			continue
		}
		if st != vms.StateRunning {
			r.note(fmt.Sprintf("sysctl restore: %s is %s, not restored (it boots at its baseline)", g.Role, st))
			continue
		}
		var rep guestsysctl.RestoreReport
		if err := r.sysctlCall(ctx, g.Role, "restore", nil, &rep); err != nil {
			r.note("sysctl restore: " + err.Error())
			continue
		}
		if len(rep.Restored) > 0 {
			if r.sysctlRec.restoredAfter == nil {
				r.sysctlRec.restoredAfter = map[string]map[string]SysctlChange{}
			}
			r.sysctlRec.restoredAfter[g.Role] = rep.Restored
		}
	}
}

// sysctlCall runs hostlab-sysctl CMD in a guest with stdin as its input and
// decodes the JSON report it prints into out.
func (r *Run) sysctlCall(ctx context.Context, role, cmd string, stdin []byte, out any) error {
	c, err := r.guest(ctx, role)
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", guestsysctl.Name, cmd, role, err)
	}
	var stdout, stderr bytes.Buffer
	status, err := c.Run(ctx, guestsysctl.Name+" "+cmd, provision.RunOptions{Stdin: bytes.NewReader(stdin), Stdout: &stdout, Stderr: &stderr})
	switch {
	case err != nil:
		return fmt.Errorf("%s %s on %s: %w", guestsysctl.Name, cmd, role, err)
	case status == 127:
		return fmt.Errorf("%s %s on %s: not in the guest (a lab booted by an older hostlab: hostlab down, then up)", guestsysctl.Name, cmd, role)
	case status != 0:
		return fmt.Errorf("%s %s on %s: exit status %d: %s", guestsysctl.Name, cmd, role, status, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("%s %s on %s: report: %w", guestsysctl.Name, cmd, role, err)
	}
	return nil
}
