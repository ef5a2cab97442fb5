package labtest

import "testing"

func TestDecide(t *testing.T) {
	cases := []struct {
		ci             bool
		missing        string
		skip, wantFail bool
	}{
		{false, "", false, false},
		{true, "", false, false},
		{false, "no root", true, false},
		{true, "no root", false, true},
	}
	for _, c := range cases {
		skip, fail := decide(c.ci, c.missing)
		if skip != c.skip || fail != c.wantFail {
			t.Errorf("decide(ci=%v, %q) = skip %v fail %v, want %v %v", c.ci, c.missing, skip, fail, c.skip, c.wantFail)
		}
	}
}
