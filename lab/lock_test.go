package lab

import (
	"errors"
	"testing"
)

func TestLockExcludesASecondRun(t *testing.T) {
	l := &Lab{State: &State{Name: "t"}, dir: t.TempDir()}
	unlock, err := l.Lock()
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description, so a second Lock in the same
	// process contends like another process would.
	if _, err := l.Lock(); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Lock = %v, want ErrBusy", err)
	}
	unlock()
	unlock2, err := l.Lock()
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}
