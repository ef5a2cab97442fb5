package scenario

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hostlab/hostlab/lab/model"
)

func TestParseKeepalive(t *testing.T) {
	k, err := ParseKeepalive("5s,2,3")
	if err != nil || !k.Enabled || k.Idle != 5*time.Second || k.Intvl != 2*time.Second || k.Probes != 3 {
		t.Fatalf("ParseKeepalive = %+v, %v", k, err)
	}
	for _, bad := range []string{"", "5s,2s", "0,1,1", "5s,2s,0", "x,y,z", "5s,2s,3,4"} {
		if _, err := ParseKeepalive(bad); err == nil || !strings.Contains(err.Error(), "--keepalive") {
			t.Errorf("ParseKeepalive(%q) = %v, want an error naming --keepalive", bad, err)
		}
	}
}

func TestParseSysctl(t *testing.T) {
	good := []struct{ in, role, key, value string }{
		{"router:net.ipv4.neigh.eth1.delay_first_probe_time=1", "router", "net.ipv4.neigh.eth1.delay_first_probe_time", "1"},
		{"client:net.ipv4.tcp_rmem=4096 131072 6291456", "client", "net.ipv4.tcp_rmem", "4096 131072 6291456"},
		{"server:net.ipv4.tcp_wmem=4096\t16384\t4194304", "server", "net.ipv4.tcp_wmem", "4096\t16384\t4194304"},
		{"client:net.ipv4.tcp_congestion_control=$(reboot); 'x' \"y\" `z`=:", "client", "net.ipv4.tcp_congestion_control", "$(reboot); 'x' \"y\" `z`=:"},
	}
	for _, g := range good {
		role, k, v, err := ParseSysctl(g.in)
		if err != nil || role != g.role || k != g.key || v != g.value {
			t.Errorf("ParseSysctl(%q) = %q %q %q %v", g.in, role, k, v, err)
		}
	}
	for _, bad := range []string{
		"net.ipv4.tcp_retries2=5", "db:k.x=v", "client:k", "client:=1", "client:tcp_retries2=1",
		"client:k;rm.x=1", "client:net/ipv4/tcp_retries2=1", "client:net..ipv4=1", "client:.net.ipv4=1",
		"client:net.ipv4.=1", "client:net.IPv4.x=1", "client:net.ipv4.tcp retries2=1", "client:$(x).y=1",
		"client:net.ipv4.tcp_retries2=", "client:net.ipv4.tcp_retries2= ", "client:net.ipv4.tcp_retries2=5\nreboot",
	} {
		_, _, _, err := ParseSysctl(bad)
		if err == nil {
			t.Errorf("ParseSysctl(%q) accepted", bad)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "--sysctl ") || strings.Contains(msg, "\n") || !strings.Contains(msg, "e.g.") && !strings.Contains(msg, "use ") {
			t.Errorf("ParseSysctl(%q) = %q, want one line naming --sysctl and the fix", bad, msg)
		}
	}
}

func TestSysctlOverrides(t *testing.T) {
	o := Options{Sysctls: []string{"client:net.ipv4.tcp_retries2=5", "client:net.ipv4.tcp_rmem=4096 131072 6291456", "router:net.ipv4.ip_forward=1", "client:net.ipv4.tcp_retries2=7"}}
	got := o.sysctlOverrides()
	want := map[string]map[string]string{
		"client": {"net.ipv4.tcp_retries2": "7", "net.ipv4.tcp_rmem": "4096 131072 6291456"},
		"router": {"net.ipv4.ip_forward": "1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("overrides = %v, want %v (the last value of a key wins)", got, want)
	}
}

func TestValidate(t *testing.T) {
	good := Options{Read: "event", ServerSigterm: "ignore", Reboot: "power-cycle", Keepalive: "3s,1s,3", Sysctls: []string{"client:a.b=1"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Options{
		"read":      {Read: "poll"},
		"sigterm":   {ServerSigterm: "hup"},
		"reboot":    {Reboot: "kexec"},
		"keepalive": {Keepalive: "on"},
		"sysctl":    {Sysctls: []string{"x"}},
		"negative":  {UserTimeout: -time.Second},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, o)
		}
	}
}

func TestCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Catalogue {
		if seen[s.Name] {
			t.Errorf("scenario %s listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Summary == "" || s.Property == "" || s.Fault == nil || s.Expect == nil {
			t.Errorf("scenario %s lacks a summary, property, fault or expectation", s.Name)
		}
		got, err := Lookup(s.Name)
		if err != nil || got.Name != s.Name {
			t.Errorf("Lookup(%s) = %v, %v", s.Name, got.Name, err)
		}
	}
	for _, want := range []string{"kill-server", "sigpipe", "power-off", "unreachable", "crash-reboot", "shutdown"} {
		if !seen[want] {
			t.Errorf("scenario %s missing (the names are the CLI contract)", want)
		}
	}
	if _, err := Lookup("power-of"); err == nil || !strings.Contains(err.Error(), "power-off") {
		t.Errorf("Lookup of a typo = %v, want the list of names", err)
	}
}

func TestSigpipeExpectation(t *testing.T) {
	cases := []struct {
		opt  Options
		want string
	}{
		{Options{Client: ClientClassic}, model.SIGPIPE},
		{Options{Client: ClientClassic, SigpipeIgnore: true}, model.EPIPE},
		{Options{Client: ClientGo}, model.EPIPE},
	}
	// The kill lands while the client sleeps between lines (its last line,
	// in two writes, echoed whole): two writes meet the FIN.
	f := time.Unix(1795614000, 0)
	wire := &Wire{FIN: f.Add(50 * time.Millisecond), Segments: []Segment{
		{At: f.Add(-400 * time.Millisecond), Out: true, Seq: 1, Len: 1, Flags: tcpACK},
		{At: f.Add(-200 * time.Millisecond), Out: true, Seq: 2, Len: 14, Flags: tcpACK},
		{At: f.Add(-190 * time.Millisecond), Seq: 100, Len: 15, Flags: tcpACK},
		{At: f.Add(50 * time.Millisecond), Seq: 115, Flags: tcpACK | tcpFIN},
	}}
	for _, c := range cases {
		got := sigpipe.Expect(&Evidence{Opt: c.opt, Wire: wire, WritesPerLine: 2, FaultStart: f, FaultAt: f}, Kernel).Exp
		if len(got.Errors) != 1 || got.Errors[0] != c.want {
			t.Errorf("%+v: expected %v, want %s", c.opt, got.Errors, c.want)
		}
	}
}

func TestSummary(t *testing.T) {
	d, p := 7.99, 0.1
	res := &Result{Scenario: "crash-reboot", Verdict: model.Expected, Why: "within",
		Expected: Expected{Error: "ECONNRESET", Why: "no state"},
		Observed: Observed{Error: "ECONNRESET", DetectS: &d, DetectPlusS: p, ClientExit: "exit status 11"},
		RunDir:   "/r"}
	s := res.Summary()
	for _, want := range []string{"crash-reboot: EXPECTED", "ECONNRESET 7.990 s ± 0.100 s after the fault", "evidence  /r"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}
