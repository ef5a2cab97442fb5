package model

import (
	"encoding/json"
	"testing"
)

func TestCombine(t *testing.T) {
	tests := []struct {
		in   []Verdict
		want Verdict
	}{
		{nil, Unknown},
		{[]Verdict{Expected}, Expected},
		{[]Verdict{Expected, Expected}, Expected},
		{[]Verdict{Expected, Unknown}, Unknown},
		{[]Verdict{Unknown, Unexpected, Expected}, Unexpected},
		{[]Verdict{Unexpected, Unknown}, Unexpected},
	}
	for _, tt := range tests {
		if got := Combine(tt.in...); got != tt.want {
			t.Errorf("Combine(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestVerdictJSON(t *testing.T) {
	for v, s := range map[Verdict]string{Expected: `"expected"`, Unexpected: `"unexpected"`, Unknown: `"unknown"`} {
		b, err := json.Marshal(v)
		if err != nil || string(b) != s {
			t.Errorf("Marshal(%d) = %s, %v; want %s", int(v), b, err, s)
		}
		var back Verdict = -1
		if err := json.Unmarshal(b, &back); err != nil || back != v {
			t.Errorf("Unmarshal(%s) = %v, %v", b, back, err)
		}
	}
	if _, err := json.Marshal(Verdict(7)); err == nil {
		t.Error("Marshal(7) succeeded")
	}
	var v Verdict
	if err := json.Unmarshal([]byte(`"maybe"`), &v); err == nil {
		t.Error("Unmarshal(maybe) succeeded")
	}
	if Verdict(0) != Unknown {
		t.Error("zero verdict is not Unknown")
	}
}
