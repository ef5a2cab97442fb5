package vms

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCutLinkPinsBothEdges(t *testing.T) {
	ctx := context.Background()
	f, h, name := runningFake(t)
	f.delay = map[string]time.Duration{"qmp:object-add": 15 * time.Millisecond, "qmp:object-del": 12 * time.Millisecond}
	cut, err := h.CutLink(ctx, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	calls := qmpCalls(f)
	// The edge is the object-add alone: the lookups and the chardev before
	// it are not part of the window.
	if w := cut.Returned.Sub(cut.Issued); w < 15*time.Millisecond || w > 200*time.Millisecond {
		t.Fatalf("cut edge %v wide, want the object-add's 15 ms (and little more)", w)
	}
	if at := cut.At(); at.Before(cut.Issued) || at.After(cut.Returned) || cut.Uncert() < cut.Returned.Sub(cut.Issued)/2 {
		t.Fatalf("At %v ± %v does not cover the window %+v", at, cut.Uncert(), cut)
	}
	want := []string{"qmp qom-list " + name, "qmp chardev-remove " + name + " hostlab-cut0", "qmp chardev-add " + name + " hostlab-cut0",
		"qmp object-add " + name + " hostlab-cut0"}
	if strings.Join(calls, ";") != strings.Join(want, ";") {
		t.Fatalf("calls %q, want %q", calls, want)
	}
	if is, err := h.LinkIsCut(ctx, name, 0); err != nil || !is {
		t.Fatalf("LinkIsCut after CutLink = %v, %v", is, err)
	}
	if _, err := h.CutLink(ctx, name, 0); !errors.Is(err, ErrLinkCut) {
		t.Fatalf("second CutLink = %v, want ErrLinkCut", err)
	}
	heal, healed, err := h.HealLink(ctx, name, 0)
	if err != nil || !healed {
		t.Fatalf("HealLink = %v, %v", healed, err)
	}
	if w := heal.Returned.Sub(heal.Issued); w < 12*time.Millisecond || heal.Issued.Before(cut.Returned) {
		t.Fatalf("heal edge %+v (%v wide), want the object-del's window after the cut", heal, w)
	}
	if is, _ := h.LinkIsCut(ctx, name, 0); is {
		t.Fatal("link still cut after HealLink")
	}
	// Healing a link that is not cut is no error, and says so.
	if e, healed, err := h.HealLink(ctx, name, 0); err != nil || healed || e != (LinkEdge{}) {
		t.Fatalf("second HealLink = %+v, %v, %v; want nothing to heal", e, healed, err)
	}
	// The chardev went with the filter: a new cut works.
	if _, err := h.CutLink(ctx, name, 0); err != nil {
		t.Fatalf("cut after heal: %v", err)
	}
}

func TestCutLinkFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	f, h, name := runningFake(t)
	f.fail = map[string]error{"qmp:object-add": errors.New("Property 'filter-redirector.position' not found")}
	if _, err := h.CutLink(ctx, name, 0); err == nil || !strings.Contains(err.Error(), "the link is not cut") {
		t.Fatalf("CutLink = %v, want the object-add's error", err)
	}
	d := f.domains[name]
	if len(d.objects) != 0 || len(d.chardevs) != 0 {
		t.Fatalf("left behind objects %v chardevs %v", d.objects, d.chardevs)
	}
}

func TestHealLinkFailureKeepsTheCut(t *testing.T) {
	ctx := context.Background()
	f, h, name := runningFake(t)
	if _, err := h.CutLink(ctx, name, 0); err != nil {
		t.Fatal(err)
	}
	f.fail = map[string]error{"qmp:object-del": errors.New("busy")}
	if _, healed, err := h.HealLink(ctx, name, 0); err == nil || healed {
		t.Fatalf("HealLink = %v, %v; want the failure", healed, err)
	}
	if is, _ := h.LinkIsCut(ctx, name, 0); !is {
		t.Fatal("a failed heal reported the link restored")
	}
}

func TestCutLinkOnAStoppedDomain(t *testing.T) {
	ctx := context.Background()
	_, h, name := runningFake(t)
	if err := h.PowerOff(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CutLink(ctx, name, 0); err == nil {
		t.Fatal("CutLink on a domain that is off succeeded")
	}
}

// qmpCalls lists the fake's QMP calls.
func qmpCalls(f *fakeLibvirt) []string {
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, "qmp ") {
			out = append(out, strings.TrimSpace(c))
		}
	}
	return out
}
