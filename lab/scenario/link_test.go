package scenario

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/provision/guestlink"
)

func TestParseLink(t *testing.T) {
	d50 := guestlink.Netem{Delay: 50 * time.Millisecond}
	good := []struct {
		in                 []string
		toServer, toClient string
	}{
		{nil, "none", "none"},
		{[]string{"delay 50ms"}, "delay 50ms", "delay 50ms"},
		{[]string{"delay 50ms loss 2%"}, "delay 50ms loss 2%", "delay 50ms loss 2%"},
		{[]string{"to-server:loss 5%"}, "loss 5%", "none"},
		{[]string{"to-client:delay 100ms 10ms", "to-server:delay 20ms"}, "delay 20ms", "delay 100ms 10ms"},
		{[]string{"delay 10ms reorder 25% 50% duplicate 1%"}, "delay 10ms duplicate 1% reorder 25% 50%", "delay 10ms duplicate 1% reorder 25% 50%"},
	}
	for _, c := range good {
		got, err := ParseLink(c.in)
		if err != nil || got.ToServer.String() != c.toServer || got.ToClient.String() != c.toClient {
			t.Errorf("ParseLink(%q) = %v / %v, %v; want %q / %q", c.in, got.ToServer, got.ToClient, err, c.toServer, c.toClient)
		}
	}
	if c, _ := ParseLink([]string{"delay 50ms"}); c.ToServer != d50 || c.IsZero() {
		t.Errorf("delay 50ms parsed as %+v", c)
	}
	bad := []struct {
		in   []string
		says string
	}{
		{[]string{"delay 50ms jitter 5ms"}, `delay "jitter" is not a time`},
		{[]string{"rate 1mbit"}, `unknown word "rate"`},
		{[]string{"loss 101%"}, "outside 0..100%"},
		{[]string{"delay -5ms"}, "negative"},
		{[]string{"delay 50"}, "with a unit"},
		{[]string{"reorder 10%"}, "needs a delay"},
		{[]string{""}, "empty"},
		{[]string{"to-router:delay 5ms"}, `direction "to-router"`},
		{[]string{"delay 5ms", "to-client:loss 1%"}, "given twice"},
		{[]string{"to-server:delay 5ms", "to-server:loss 1%"}, "given twice"},
	}
	for _, c := range bad {
		_, err := ParseLink(c.in)
		if err == nil || !strings.Contains(err.Error(), c.says) || !strings.HasPrefix(err.Error(), "--link ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseLink(%q) = %v; want one line naming --link and %q", c.in, err, c.says)
		}
	}
	// Options refuse them too, before anything runs.
	if err := (Options{Link: []string{"loss 200%"}}).Validate(); !errors.Is(err, guestlink.ErrBadSpec) {
		t.Errorf("Validate = %v, want the bad spec", err)
	}
}

func TestLinkStatusErrNamesTheFix(t *testing.T) {
	for _, c := range []struct {
		status int
		says   string
	}{
		{127, "hostlab down --lab pt-x && hostlab up --lab pt-x"},
		{guestlink.ExitMissing, "loads sch_netem"},
		{1, "exit status 1"},
	} {
		err := linkStatusErr("pt-x", c.status, "hostlab-link: netem qdisc on eth0: the guest kernel lacks it (module sch_netem: no such file or directory)")
		if !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "\n") {
			t.Errorf("status %d: %v; want one line with %q", c.status, err, c.says)
		}
	}
	if !errors.Is(linkStatusErr("x", 127, ""), errNoLinkTool) {
		t.Error("status 127 is not errNoLinkTool")
	}
}
