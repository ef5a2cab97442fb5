package guestinit

import (
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseCmdline(t *testing.T) {
	def := Config{SSHAddr: DefaultSSHAddr, Grace: DefaultGrace}
	tests := []struct {
		name    string
		cmdline string
		want    func(c *Config)
		wantErr []string // substrings, one per expected error; nil means no error
	}{
		{name: "empty", cmdline: "", want: func(*Config) {}},
		{name: "other parameters ignored", cmdline: "console=ttyS0 quiet panic=-1 init=/init\n", want: func(*Config) {}},
		{
			name: "full",
			cmdline: "console=ttyS0 hostlab.name=server hostlab.net=52:54:00:12:34:56,10.0.2.15/24,10.0.2.2 " +
				"hostlab.net=52:54:00:00:00:02,192.168.100.2/30 hostlab.ssh=10.0.2.15:22 " +
				"hostlab.sysctl=net.ipv4.tcp_retries2=5 hostlab.sysctl=net.ipv4.tcp_syn_retries=3 hostlab.grace=2500ms",
			want: func(c *Config) {
				c.Name = "server"
				c.Nets = []NetConfig{
					{MAC: mustMAC(t, "52:54:00:12:34:56"), Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2")},
					{MAC: mustMAC(t, "52:54:00:00:00:02"), Addr: netip.MustParsePrefix("192.168.100.2/30")},
				}
				c.SSHAddr = "10.0.2.15:22"
				c.Sysctls = []Sysctl{{"net.ipv4.tcp_retries2", "5"}, {"net.ipv4.tcp_syn_retries", "3"}}
				c.Grace = 2500 * time.Millisecond
			},
		},
		{
			name:    "quoted sysctl value with spaces",
			cmdline: `hostlab.sysctl="net.ipv4.tcp_rmem=4096 131072 6291456" quiet`,
			want: func(c *Config) {
				c.Sysctls = []Sysctl{{"net.ipv4.tcp_rmem", "4096 131072 6291456"}}
			},
		},
		{name: "ipv6 net", cmdline: "hostlab.net=52:54:00:00:00:09,fd00::2/64,fd00::1", want: func(c *Config) {
			c.Nets = []NetConfig{{MAC: mustMAC(t, "52:54:00:00:00:09"), Addr: netip.MustParsePrefix("fd00::2/64"), Gateway: netip.MustParseAddr("fd00::1")}}
		}},
		{name: "ssh on all addresses", cmdline: "hostlab.ssh=:2222", want: func(c *Config) { c.SSHAddr = ":2222" }},
		{name: "zero grace", cmdline: "hostlab.grace=0s", want: func(c *Config) { c.Grace = 0 }},
		{
			name:    "bad MAC keeps the rest",
			cmdline: "hostlab.name=client hostlab.net=52:54:zz:00:00:01,10.0.0.1/24 hostlab.net=52:54:00:00:00:01,10.0.0.1/24",
			want: func(c *Config) {
				c.Name = "client"
				c.Nets = []NetConfig{{MAC: mustMAC(t, "52:54:00:00:00:01"), Addr: netip.MustParsePrefix("10.0.0.1/24")}}
			},
			wantErr: []string{"bad MAC"},
		},
		{name: "bad CIDR", cmdline: "hostlab.net=52:54:00:00:00:01,10.0.0.1", want: func(*Config) {}, wantErr: []string{"bad address"}},
		{name: "bad gateway", cmdline: "hostlab.net=52:54:00:00:00:01,10.0.0.1/24,10.0.0", want: func(*Config) {}, wantErr: []string{"bad gateway"}},
		{name: "gateway family", cmdline: "hostlab.net=52:54:00:00:00:01,10.0.0.1/24,fd00::1", want: func(*Config) {}, wantErr: []string{"differ in family"}},
		{name: "net missing address", cmdline: "hostlab.net=52:54:00:00:00:01", want: func(*Config) {}, wantErr: []string{"want MAC,IP/PREFIX"}},
		{name: "bad duration", cmdline: "hostlab.grace=5", want: func(*Config) {}, wantErr: []string{"bad grace duration"}},
		{name: "negative duration", cmdline: "hostlab.grace=-1s", want: func(*Config) {}, wantErr: []string{"negative grace"}},
		{name: "bad ssh address", cmdline: "hostlab.ssh=10.0.2.15", want: func(*Config) {}, wantErr: []string{"bad ssh listen address"}},
		{name: "bad ssh port", cmdline: "hostlab.ssh=:ssh", want: func(*Config) {}, wantErr: []string{"bad ssh listen port"}},
		{name: "bad ssh host", cmdline: "hostlab.ssh=server:22", want: func(*Config) {}, wantErr: []string{"bad ssh listen host"}},
		{name: "sysctl without value", cmdline: "hostlab.sysctl=net.ipv4.tcp_retries2", want: func(*Config) {}, wantErr: []string{"want KEY=VALUE"}},
		{name: "sysctl path escape", cmdline: "hostlab.sysctl=../../etc/passwd=x", want: func(*Config) {}, wantErr: []string{"bad sysctl key"}},
		{name: "bad hostname", cmdline: "hostlab.name=a/b", want: func(*Config) {}, wantErr: []string{"invalid character"}},
		{name: "empty hostname", cmdline: "hostlab.name=", want: func(*Config) {}, wantErr: []string{"1 to 64"}},
		{name: "unknown hostlab parameter", cmdline: "hostlab.bogus=1", want: func(*Config) {}, wantErr: []string{"unknown hostlab parameter"}},
		{
			name:    "several errors",
			cmdline: "hostlab.grace=x hostlab.ssh=:22 hostlab.net=x,y",
			want:    func(*Config) {},
			wantErr: []string{"bad grace duration", "bad MAC"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := def
			tt.want(&want)
			got, err := ParseCmdline(tt.cmdline)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config =\n%+v\nwant\n%+v", got, want)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.wantErr) {
				t.Errorf("got %d errors (%v), want %d", len(lines), err, len(tt.wantErr))
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSysctlPath(t *testing.T) {
	if got := (Sysctl{Key: "net.ipv4.tcp_retries2"}).Path(); got != "/proc/sys/net/ipv4/tcp_retries2" {
		t.Errorf("path = %q", got)
	}
}
