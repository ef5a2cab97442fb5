package guestlink

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Netem is one direction's link conditions in the terms of the kernel's
// netem qdisc (tc-netem(8)): a delay with optional jitter, and the
// probabilities, in percent, of losing, duplicating or reordering a frame,
// each with an optional correlation to the previous frame, in percent.
type Netem struct {
	// Delay is added to every frame; Jitter varies it (uniformly, ±Jitter)
	// and DelayCorr correlates successive variations.
	Delay     time.Duration `json:"delay_ns,omitempty"`
	Jitter    time.Duration `json:"jitter_ns,omitempty"`
	DelayCorr float64       `json:"delay_corr_pct,omitempty"`
	// Loss drops frames.
	Loss     float64 `json:"loss_pct,omitempty"`
	LossCorr float64 `json:"loss_corr_pct,omitempty"`
	// Duplicate sends frames twice.
	Duplicate     float64 `json:"duplicate_pct,omitempty"`
	DuplicateCorr float64 `json:"duplicate_corr_pct,omitempty"`
	// Reorder sends frames at once instead of delayed (netem's reordering
	// needs a delay).
	Reorder     float64 `json:"reorder_pct,omitempty"`
	ReorderCorr float64 `json:"reorder_corr_pct,omitempty"`
}

// ErrBadSpec marks a link spec netem would refuse.
var ErrBadSpec = errors.New("bad link spec")

// IsZero reports whether the conditions change nothing.
func (n Netem) IsZero() bool { return n == Netem{} }

// String renders the conditions as a spec ParseNetem reads back, in
// netem's words: "delay 50ms 10ms 25% loss 2%".
func (n Netem) String() string {
	var w []string
	if n.Delay > 0 || n.Jitter > 0 {
		w = append(w, "delay", n.Delay.String())
		if n.Jitter > 0 || n.DelayCorr > 0 {
			w = append(w, n.Jitter.String())
		}
		if n.DelayCorr > 0 {
			w = append(w, pct(n.DelayCorr))
		}
	}
	add := func(word string, p, corr float64) {
		if p > 0 {
			w = append(w, word, pct(p))
			if corr > 0 {
				w = append(w, pct(corr))
			}
		}
	}
	add("loss", n.Loss, n.LossCorr)
	add("duplicate", n.Duplicate, n.DuplicateCorr)
	add("reorder", n.Reorder, n.ReorderCorr)
	if len(w) == 0 {
		return "none"
	}
	return strings.Join(w, " ")
}

func pct(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) + "%" }

// ParseNetem reads a spec in netem's words — delay TIME [JITTER [CORR%]],
// loss PCT [CORR%], duplicate PCT [CORR%], reorder PCT [CORR%] — as in
// "delay 50ms loss 2%". Times need a unit (50ms, 1s, 200us); percentages
// run from 0 to 100, with or without the "%". It refuses what netem would
// (a negative delay, loss over 100%, reorder without a delay) and what it
// does not know, with one line naming the word.
func ParseNetem(spec string) (Netem, error) {
	var n Netem
	f := strings.Fields(spec)
	if len(f) == 0 {
		return n, fmt.Errorf("%w: empty: give netem words such as 'delay 50ms loss 2%%'", ErrBadSpec)
	}
	seen := map[string]bool{}
	for i := 0; i < len(f); {
		word := f[i]
		if seen[word] {
			return n, fmt.Errorf("%w: %q given twice", ErrBadSpec, word)
		}
		seen[word] = true
		i++
		// args are the words up to the next keyword.
		var args []string
		for i < len(f) && !isKeyword(f[i]) {
			args = append(args, f[i])
			i++
		}
		var err error
		switch word {
		case "delay":
			err = n.parseDelay(args)
		case "loss":
			n.Loss, n.LossCorr, err = parseProb(word, args)
		case "duplicate":
			n.Duplicate, n.DuplicateCorr, err = parseProb(word, args)
		case "reorder":
			n.Reorder, n.ReorderCorr, err = parseProb(word, args)
		default:
			return n, fmt.Errorf("%w: unknown word %q: use delay, loss, duplicate or reorder (e.g. 'delay 50ms 10ms loss 2%%')", ErrBadSpec, word)
		}
		if err != nil {
			return n, err
		}
	}
	if n.Reorder > 0 && n.Delay == 0 {
		return n, fmt.Errorf("%w: reorder needs a delay (netem sends reordered frames at once and the rest delayed), e.g. 'delay 10ms reorder 25%%'", ErrBadSpec)
	}
	return n, nil
}

func isKeyword(s string) bool {
	switch s {
	case "delay", "loss", "duplicate", "reorder":
		return true
	}
	return false
}

func (n *Netem) parseDelay(args []string) error {
	if len(args) == 0 || len(args) > 3 {
		return fmt.Errorf("%w: delay takes TIME [JITTER [CORRELATION%%]], e.g. 'delay 50ms 10ms'", ErrBadSpec)
	}
	times := []*time.Duration{&n.Delay, &n.Jitter}
	for i, a := range args[:min(2, len(args))] {
		d, err := time.ParseDuration(a)
		switch {
		case err != nil:
			return fmt.Errorf("%w: delay %q is not a time with a unit, e.g. 50ms", ErrBadSpec, a)
		case d < 0:
			return fmt.Errorf("%w: delay %q is negative", ErrBadSpec, a)
		case d > time.Hour:
			return fmt.Errorf("%w: delay %q exceeds an hour", ErrBadSpec, a)
		case d%time.Microsecond != 0:
			return fmt.Errorf("%w: delay %q is finer than netem's microseconds", ErrBadSpec, a)
		}
		*times[i] = d
	}
	if len(args) == 3 {
		c, err := parsePct("delay correlation", args[2])
		if err != nil {
			return err
		}
		n.DelayCorr = c
	}
	if n.Delay == 0 && n.Jitter > 0 {
		return fmt.Errorf("%w: jitter %s without a delay: netem varies a delay, give one", ErrBadSpec, n.Jitter)
	}
	return nil
}

func parseProb(word string, args []string) (float64, float64, error) {
	if len(args) == 0 || len(args) > 2 {
		return 0, 0, fmt.Errorf("%w: %s takes PERCENT [CORRELATION%%], e.g. '%s 2%%'", ErrBadSpec, word, word)
	}
	p, err := parsePct(word, args[0])
	if err != nil {
		return 0, 0, err
	}
	var c float64
	if len(args) == 2 {
		if c, err = parsePct(word+" correlation", args[1]); err != nil {
			return 0, 0, err
		}
	}
	return p, c, nil
}

func parsePct(what, s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	switch {
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("%w: %s %q is not a percentage, e.g. 2%%", ErrBadSpec, what, s)
	case v < 0 || v > 100:
		return 0, fmt.Errorf("%w: %s %q is outside 0..100%%", ErrBadSpec, what, s)
	}
	return v, nil
}
