package scenario

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// relevantSysctls are read back from both guests into the run's config.
var relevantSysctls = []string{
	"net.ipv4.tcp_retries1", "net.ipv4.tcp_retries2", "net.ipv4.tcp_syn_retries", "net.ipv4.tcp_synack_retries",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_orphan_retries", "net.ipv4.tcp_early_retrans",
	"net.ipv4.tcp_thin_linear_timeouts", "net.ipv4.neigh.default.gc_stale_time",
	"net.ipv4.neigh.default.base_reachable_time_ms", "net.ipv4.neigh.default.mcast_solicit",
	"net.ipv4.neigh.default.ucast_solicit", "net.ipv4.neigh.default.retrans_time_ms",
	"net.ipv4.ip_forward",
}

// applySysctls applies the run's --sysctl values, then reads back each
// guest's kernel release and relevant sysctls into the run's config.
func (r *Run) applySysctls(ctx context.Context) error {
	for _, s := range r.Opt.Sysctls {
		role, key, value, _ := ParseSysctl(s)
		if _, err := r.sh(ctx, role, fmt.Sprintf("sysctl -w %s=%s", key, value)); err != nil {
			return fmt.Errorf("apply --sysctl %s: %w", s, err)
		}
	}
	for _, g := range r.cfg.Lab.State.Guests {
		role := g.Role
		keys := append([]string(nil), relevantSysctls...)
		for _, s := range r.Opt.Sysctls {
			if rl, key, _, _ := ParseSysctl(s); rl == role && !slices.Contains(keys, key) {
				keys = append(keys, key)
			}
		}
		out, err := r.sh(ctx, role, "uname -r; for k in "+strings.Join(keys, " ")+"; do echo \"$k=$(sysctl -n $k 2>/dev/null)\"; done")
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		r.kernel[role] = lines[0]
		r.sysctls[role] = map[string]string{}
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, "="); ok {
				r.sysctls[role][k] = v
			}
		}
	}
	for _, s := range r.Opt.Sysctls {
		role, key, value, _ := ParseSysctl(s)
		if got := r.sysctls[role][key]; got != "" && got != value {
			return fmt.Errorf("--sysctl %s did not hold: the guest reads back %s", s, got)
		}
	}
	return nil
}
