package guestinit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParsePowerCommand(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    PowerRequest
		wantErr bool
	}{
		{"shutdown", []string{"-h", "now"}, PowerRequest{Action: PowerOff}, false},
		{"shutdown", []string{"-P", "+0"}, PowerRequest{Action: PowerOff}, false},
		{"shutdown", []string{"-r", "now"}, PowerRequest{Action: Reboot}, false},
		{"shutdown", []string{"-H", "now"}, PowerRequest{Action: Halt}, false},
		{"shutdown", []string{"-hP", "now"}, PowerRequest{Action: PowerOff}, false},
		{"shutdown", []string{"now"}, PowerRequest{Action: PowerOff}, false},
		{"shutdown", nil, PowerRequest{Action: PowerOff}, false},
		{"shutdown", []string{"-h", "+5"}, PowerRequest{}, true},
		{"shutdown", []string{"-x", "now"}, PowerRequest{}, true},
		{"shutdown", []string{"-h", "now", "now"}, PowerRequest{}, true},
		{"shutdown", []string{"-h", "now", "going down"}, PowerRequest{}, true},
		{"poweroff", nil, PowerRequest{Action: PowerOff}, false},
		{"reboot", nil, PowerRequest{Action: Reboot}, false},
		{"halt", nil, PowerRequest{Action: Halt}, false},
		{"poweroff", []string{"-f"}, PowerRequest{Action: PowerOff, Force: true}, false},
		{"reboot", []string{"-d", "3"}, PowerRequest{Action: Reboot}, false},
		{"halt", []string{"-d3", "-f"}, PowerRequest{Action: Halt, Force: true}, false},
		{"reboot", []string{"now"}, PowerRequest{}, true},
		{"reboot", []string{"-d"}, PowerRequest{}, true},
		{"telinit", nil, PowerRequest{}, true},
	}
	for _, tt := range tests {
		got, err := ParsePowerCommand(tt.name, tt.args)
		if tt.wantErr {
			if !errors.Is(err, ErrUsage) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s %q: error %v, want a one-line usage error", tt.name, tt.args, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s %q = %+v, %v; want %+v", tt.name, tt.args, got, err, tt.want)
		}
	}
}

func TestPowerActionSignals(t *testing.T) {
	for a, want := range map[PowerAction]string{Halt: "user defined signal 1", PowerOff: "user defined signal 2", Reboot: "terminated"} {
		if got := a.Signal().String(); got != want {
			t.Errorf("%s signal = %q, want %q", a, got, want)
		}
		if back := actionForSignal(a.Signal()); back != a {
			t.Errorf("actionForSignal(%s) = %s, want %s", a.Signal(), back, a)
		}
	}
}

func TestIsGuestInvocation(t *testing.T) {
	// The test binary is not PID 1, so only the name decides.
	for args, want := range map[string]bool{
		"/init": true, "/sbin/shutdown": true, "poweroff": true, "/sbin/reboot": true, "halt": true,
		"/usr/bin/hostlab": false, "hostlab-init": false, "": false,
	} {
		if got := IsGuestInvocation([]string{args}); got != want {
			t.Errorf("IsGuestInvocation(%q) = %v, want %v", args, got, want)
		}
	}
	if IsGuestInvocation(nil) {
		t.Error("IsGuestInvocation(nil) = true")
	}
}

func TestMainRejectsUsage(t *testing.T) {
	if code := Main([]string{"/sbin/shutdown", "-h", "tomorrow"}); code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if code := Main([]string{"/init"}); code != 1 {
		t.Errorf("init not as PID 1: exit code = %d, want 1", code)
	}
}

func TestFormatLine(t *testing.T) {
	wall := time.Date(2026, 11, 25, 13, 0, 0, 123456000, time.UTC)
	got := FormatLine("server", 12*time.Second+345678901, wall, "sending SIGTERM to all processes (grace 5s)")
	want := "hostlab-init[12.345678] server 2026-11-25T13:00:00.123456Z: sending SIGTERM to all processes (grace 5s)\n"
	if got != want {
		t.Errorf("line =\n%q\nwant\n%q", got, want)
	}
}
