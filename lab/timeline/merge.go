package timeline

import (
	"cmp"
	"slices"
)

// Merge combines event streams into one history ordered by HostNS. The sort
// is stable: events at the same HostNS keep the order of their streams in the
// argument list, then their order within the stream.
func Merge(streams ...[]Event) []Event {
	n := 0
	for _, s := range streams {
		n += len(s)
	}
	out := make([]Event, 0, n)
	for _, s := range streams {
		out = append(out, s...)
	}
	slices.SortStableFunc(out, func(a, b Event) int { return cmp.Compare(a.HostNS, b.HostNS) })
	return out
}
