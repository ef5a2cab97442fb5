package model

import "fmt"

// Verdict is the three-valued outcome of comparing an observation with the
// model; its zero value is Unknown so that an unset verdict never passes.
type Verdict int

const (
	// Unknown means the evidence cannot decide, e.g. the run ended first.
	Unknown Verdict = iota
	// Expected means the observation agrees with the model.
	Expected
	// Unexpected means the observation contradicts the model.
	Unexpected
)

// rank orders verdicts for Combine: Unexpected beats Unknown beats Expected.
func (v Verdict) rank() int {
	switch v {
	case Expected:
		return 0
	case Unknown:
		return 1
	default:
		return 2
	}
}

// Combine composes verdicts Jepsen-style: any Unexpected wins, else any
// Unknown, else Expected; combining nothing gives Unknown (no evidence).
func Combine(vs ...Verdict) Verdict {
	if len(vs) == 0 {
		return Unknown
	}
	out := Expected
	for _, v := range vs {
		if v.rank() > out.rank() {
			out = v
		}
	}
	return out
}

// String returns "expected", "unexpected" or "unknown".
func (v Verdict) String() string {
	switch v {
	case Expected:
		return "expected"
	case Unexpected:
		return "unexpected"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// MarshalText encodes the verdict as its name.
func (v Verdict) MarshalText() ([]byte, error) {
	switch v {
	case Expected, Unexpected, Unknown:
		return []byte(v.String()), nil
	}
	return nil, fmt.Errorf("marshal verdict %d: %w", int(v), ErrInvalidInput)
}

// UnmarshalText decodes a verdict name.
func (v *Verdict) UnmarshalText(b []byte) error {
	switch string(b) {
	case "expected":
		*v = Expected
	case "unexpected":
		*v = Unexpected
	case "unknown":
		*v = Unknown
	default:
		return fmt.Errorf("unmarshal verdict %q: %w", b, ErrInvalidInput)
	}
	return nil
}
