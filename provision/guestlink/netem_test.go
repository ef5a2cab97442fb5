package guestlink

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseNetem(t *testing.T) {
	const ms = time.Millisecond
	good := []struct {
		spec string
		want Netem
		str  string
	}{
		{"delay 50ms", Netem{Delay: 50 * ms}, "delay 50ms"},
		{"delay 50ms loss 2%", Netem{Delay: 50 * ms, Loss: 2}, "delay 50ms loss 2%"},
		{"delay 100ms 10ms 25%", Netem{Delay: 100 * ms, Jitter: 10 * ms, DelayCorr: 25}, "delay 100ms 10ms 25%"},
		{"loss 0.5 25", Netem{Loss: 0.5, LossCorr: 25}, "loss 0.5% 25%"},
		{"  duplicate 1%   delay 1s ", Netem{Delay: time.Second, Duplicate: 1}, "delay 1s duplicate 1%"},
		{"delay 10ms reorder 25% 50%", Netem{Delay: 10 * ms, Reorder: 25, ReorderCorr: 50}, "delay 10ms reorder 25% 50%"},
		{"loss 100%", Netem{Loss: 100}, "loss 100%"},
		{"delay 0ms", Netem{}, "none"},
	}
	for _, c := range good {
		got, err := ParseNetem(c.spec)
		if err != nil || got != c.want {
			t.Errorf("ParseNetem(%q) = %+v, %v; want %+v", c.spec, got, err, c.want)
			continue
		}
		if s := got.String(); s != c.str {
			t.Errorf("String of %q = %q, want %q", c.spec, s, c.str)
		}
		if back, err := ParseNetem(got.String()); err != nil && !got.IsZero() || err == nil && back != got {
			t.Errorf("%q does not read back: %+v, %v", got.String(), back, err)
		}
	}
	bad := []struct{ spec, says string }{
		{"", "empty"},
		{"latency 50ms", `unknown word "latency"`},
		{"delay", "delay takes"},
		{"delay 50", "not a time with a unit"},
		{"delay -5ms", "negative"},
		{"delay 2h", "exceeds an hour"},
		{"delay 1ns", "finer than"},
		{"delay 50ms 10ms 25% 3", "delay takes"},
		{"delay 0ms 5ms", "jitter"},
		{"loss 101%", "outside 0..100%"},
		{"loss -1%", "outside 0..100%"},
		{"loss two", "not a percentage"},
		{"loss NaN", "not a percentage"},
		{"loss", "loss takes"},
		{"loss 1% 2% 3%", "loss takes"},
		{"duplicate 150", "outside"},
		{"reorder 25%", "reorder needs a delay"},
		{"delay 5ms delay 6ms", "given twice"},
		{"50ms", `unknown word "50ms"`},
	}
	for _, c := range bad {
		_, err := ParseNetem(c.spec)
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseNetem(%q) = %v; want one line with %q", c.spec, err, c.says)
		}
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	cases := []struct {
		args  []string
		stdin string
		code  int
	}{
		{nil, "", ExitUsage},
		{[]string{"apply", "x"}, "", ExitUsage},
		{[]string{"apply"}, "not json", ExitUsage},
		{[]string{"apply"}, `{"mac":"nope"}`, ExitUsage},
		{[]string{"apply"}, `{"mac":"52:54:00:00:00:01","egress":{"loss_pct":140}}`, ExitUsage},
		{[]string{"show", "52:54:00"}, "", ExitUsage},
		{[]string{"frob", "52:54:00:00:00:01"}, "", ExitUsage},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		if got := run(c.args, strings.NewReader(c.stdin), &out, &errb); got != c.code || out.Len() != 0 || !strings.HasPrefix(errb.String(), Name+": ") {
			t.Errorf("run(%q, %q) = %d, stdout %q, stderr %q; want %d and a message", c.args, c.stdin, got, out.String(), errb.String(), c.code)
		}
	}
}
