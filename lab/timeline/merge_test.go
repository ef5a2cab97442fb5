package timeline

import (
	"slices"
	"testing"
)

func ev(src, name string, at int64) Event {
	return Event{V: SchemaVersion, Src: src, Ev: name, HostNS: at}
}

func TestMerge(t *testing.T) {
	client := []Event{ev(SrcClient, "c1", 10), ev(SrcClient, "c2", 20), ev(SrcClient, "c3", 20)}
	server := []Event{ev(SrcServer, "s1", 5), ev(SrcServer, "s2", 20), ev(SrcServer, "s3", 30)}
	host := []Event{ev(SrcHost, "h1", 20), ev(SrcHost, "h2", 1)}
	got := Merge(client, server, host)
	var names []string
	for _, e := range got {
		names = append(names, e.Ev)
	}
	// Ties at 20: client's (c2, c3 in order), then server's, then host's.
	want := []string{"h2", "s1", "c1", "c2", "c3", "s2", "h1", "s3"}
	if !slices.Equal(names, want) {
		t.Errorf("Merge order %v, want %v", names, want)
	}
	if client[0].Ev != "c1" || host[1].Ev != "h2" {
		t.Error("Merge modified its inputs")
	}
	if got := Merge(); len(got) != 0 {
		t.Errorf("Merge() = %v", got)
	}
}
