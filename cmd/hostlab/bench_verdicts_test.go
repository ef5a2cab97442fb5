package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/hostlab/hostlab/lab/scenario"
)

func TestVerdictVariants(t *testing.T) {
	vs, err := verdictVariants(nil)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]verdictVariant{}
	for _, v := range vs {
		if _, dup := labels[v.Label]; dup {
			t.Errorf("variant %q listed twice", v.Label)
		}
		labels[v.Label] = v
	}
	// Every scenario of the catalogue runs with its defaults.
	for _, s := range scenario.Catalogue {
		if _, ok := labels[s.Name]; !ok {
			t.Errorf("scenario %s is not run with its defaults", s.Name)
		}
	}
	for _, want := range []string{"kill-server --read event", "sigpipe --sigpipe-ignore", "power-off --idle --keepalive 3s,1s,3",
		"power-off --user-timeout 6s", "shutdown --server-sigterm ignore"} {
		if _, ok := labels[want]; !ok {
			t.Errorf("variant %q missing", want)
		}
	}
	retries := "client:net.ipv4.tcp_retries2=5"
	for label, v := range labels {
		short := slices.Contains(shortRetries, v.Scenario.Name)
		if got := slices.Contains(v.Opt.Sysctls, retries); got != short {
			t.Errorf("%s: tcp_retries2=5 set %v; want %v", label, got, short)
		}
		router := slices.ContainsFunc(v.Opt.Sysctls, func(s string) bool { return strings.HasPrefix(s, "router:") })
		if router != v.Scenario.Routed {
			t.Errorf("%s: router sysctls %v; want them only for routed scenarios", label, v.Opt.Sysctls)
		}
	}
	u := labels["unreachable"]
	for _, want := range []string{"router:net.ipv4.neigh.eth1.base_reachable_time_ms=1000", "router:net.ipv4.neigh.eth1.delay_first_probe_time=1"} {
		if !slices.Contains(u.Opt.Sysctls, want) {
			t.Errorf("unreachable lacks %s: %v", want, u.Opt.Sysctls)
		}
	}
	if v := labels["power-off --user-timeout 6s"]; v.Opt.UserTimeout.String() != "6s" {
		t.Errorf("power-off --user-timeout 6s parsed into %+v", v.Opt)
	}
}

func TestVerdictVariantsFilter(t *testing.T) {
	vs, err := verdictVariants([]string{"shutdown", "kill-server"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.Label)
	}
	want := []string{"kill-server", "kill-server --read event", "shutdown", "shutdown --server-sigterm ignore"}
	if !slices.Equal(got, want) {
		t.Errorf("variants = %q; want %q (catalogue order)", got, want)
	}
	if _, err := verdictVariants([]string{"power-of"}); err == nil || !strings.Contains(err.Error(), "--scenarios") || !strings.Contains(err.Error(), "power-off") {
		t.Errorf("unknown scenario: %v; want an error naming --scenarios and the choices", err)
	}
}

func TestPlanVerdicts(t *testing.T) {
	plain, routed := scenario.Scenario{Name: "a"}, scenario.Scenario{Name: "r", Routed: true}
	vs := []verdictVariant{{Scenario: plain}, {Scenario: routed}, {Scenario: plain}}
	got := planVerdicts(vs, 2)
	want := []verdictJob{{0, 1}, {2, 1}, {0, 2}, {2, 2}, {1, 1}, {1, 2}}
	if !slices.Equal(got, want) {
		t.Errorf("planVerdicts = %v; want %v (repetition by repetition, routed last)", got, want)
	}
}

func TestBenchNames(t *testing.T) {
	if got := benchLabName("bench-v", 2, false); got != "bench-v2" {
		t.Errorf("plain lab name %q", got)
	}
	if got := benchLabName("bench-v", 1, true); got != "bench-vr1" {
		t.Errorf("routed lab name %q", got)
	}
	for in, want := range map[string]string{
		"power-off --idle --keepalive 3s,1s,3": "power-off-idle-keepalive-3s-1s-3",
		"kill-server":                          "kill-server",
		"power-off --user-timeout 6s":          "power-off-user-timeout-6s",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q; want %q", in, got, want)
		}
	}
}
