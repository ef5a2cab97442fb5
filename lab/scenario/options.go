package scenario

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hostlab/hostlab/lab/model"
)

// Client names a client program: the Go client, the classic C str_cli, or a
// user's own binary (a path on the host, deployed into the client guest and
// run with the Go client's flags).
type Client string

// The built-in clients.
const (
	ClientGo      Client = "go"
	ClientClassic Client = "classic"
)

// Options are a scenario's variants; zero values mean the scenario's default
// or the kernel's.
type Options struct {
	// Client picks the client program.
	Client Client `json:"client"`
	// Read is the client's discipline: blocking (str_cli) or event (poll).
	Read string `json:"read"`
	// Keepalive is "IDLE,INTVL,CNT" (e.g. "5s,2s,3") or "" for the kernel's
	// default (off).
	Keepalive string `json:"keepalive,omitempty"`
	// UserTimeout sets TCP_USER_TIMEOUT on the client socket.
	UserTimeout time.Duration `json:"user_timeout_ns,omitempty"`
	// ReadTimeout is a deadline on each read of the client.
	ReadTimeout time.Duration `json:"read_timeout_ns,omitempty"`
	// Idle makes the client connect and stay silent (the keepalive case).
	Idle bool `json:"idle,omitempty"`
	// Interval is the pause between the client's lines.
	Interval time.Duration `json:"interval_ns"`
	// Sysctls are "ROLE:KEY=VALUE" overrides, applied before connect on top
	// of the guest's baseline (which every run starts from and restores at
	// its end) and read back; VALUE may hold spaces.
	Sysctls []string `json:"sysctls,omitempty"`
	// ServerSigterm is the echo server's SIGTERM behaviour: close, ignore or
	// default.
	ServerSigterm string `json:"server_sigterm"`
	// SigpipeIgnore makes the classic client ignore SIGPIPE (EPIPE instead).
	SigpipeIgnore bool `json:"sigpipe_ignore,omitempty"`
	// Reboot is how crash-reboot reboots: reset or power-cycle.
	Reboot string `json:"reboot,omitempty"`
	// Down is how long power-cycle keeps the server off, or partition the
	// lab link cut.
	Down time.Duration `json:"down_ns,omitempty"`
	// Link are the link conditions (--link): "SPEC" for both directions,
	// "to-server:SPEC" or "to-client:SPEC" for one, SPEC in netem's words
	// such as "delay 50ms loss 2%" (see ParseLink).
	Link []string `json:"link,omitempty"`
	// Target is what connect-dead connects to: a powered-off server ("off")
	// or a live host without a listener ("no-listener").
	Target string `json:"target,omitempty"`
	// Neigh is the client's neighbour entry for the server when
	// connect-dead connects: "warm" (resolved just before) or "cold"
	// (flushed).
	Neigh string `json:"neigh,omitempty"`
	// MaxWait bounds the observation; 0 means the scenario's own bound
	// (from the model where one applies).
	MaxWait time.Duration `json:"max_wait_ns,omitempty"`
}

// Validate reports the first bad option as a one-line error naming the flag.
func (o Options) Validate() error {
	switch o.Read {
	case "", "blocking", "event":
	default:
		return fmt.Errorf("--read %q: use blocking or event", o.Read)
	}
	switch o.ServerSigterm {
	case "", "close", "ignore", "default":
	default:
		return fmt.Errorf("--server-sigterm %q: use close, ignore or default", o.ServerSigterm)
	}
	switch o.Reboot {
	case "", "reset", "power-cycle":
	default:
		return fmt.Errorf("--reboot %q: use reset or power-cycle", o.Reboot)
	}
	switch o.Target {
	case "", "off", "no-listener":
	default:
		return fmt.Errorf("--target %q: use off or no-listener", o.Target)
	}
	switch o.Neigh {
	case "", "warm", "cold":
	default:
		return fmt.Errorf("--neigh %q: use warm or cold", o.Neigh)
	}
	if o.Keepalive != "" {
		if _, err := ParseKeepalive(o.Keepalive); err != nil {
			return err
		}
	}
	for _, s := range o.Sysctls {
		if _, _, _, err := ParseSysctl(s); err != nil {
			return err
		}
	}
	if _, err := ParseLink(o.Link); err != nil {
		return err
	}
	if o.UserTimeout < 0 || o.ReadTimeout < 0 || o.Interval < 0 || o.MaxWait < 0 {
		return fmt.Errorf("durations must not be negative")
	}
	return nil
}

// ParseKeepalive parses "IDLE,INTVL,CNT" (durations or plain seconds).
func ParseKeepalive(s string) (model.Keepalive, error) {
	parts := strings.Split(s, ",")
	bad := fmt.Errorf("--keepalive %q: want IDLE,INTVL,CNT such as 5s,2s,3", s)
	if len(parts) != 3 {
		return model.Keepalive{}, bad
	}
	idle, err1 := parseSeconds(parts[0])
	intvl, err2 := parseSeconds(parts[1])
	cnt, err3 := strconv.Atoi(strings.TrimSpace(parts[2]))
	if err1 != nil || err2 != nil || err3 != nil || idle < time.Second || intvl < time.Second || cnt < 1 {
		return model.Keepalive{}, bad
	}
	return model.Keepalive{Enabled: true, Idle: idle, Intvl: intvl, Probes: cnt}, nil
}

func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// sysctlKey is a key --sysctl accepts: dotted, lowercase, no "/", no "..".
var sysctlKey = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)+$`)

// ParseSysctl splits "ROLE:KEY=VALUE" and reports a bad one as a one-line
// error naming the flag and the fix. KEY is checked strictly; VALUE is data
// (it reaches the guest on hostlab-sysctl's stdin, never in a command line),
// so it may hold spaces and any printable characters, as in
// "client:net.ipv4.tcp_rmem=4096 131072 6291456".
func ParseSysctl(s string) (role, key, value string, err error) {
	role, kv, ok := strings.Cut(s, ":")
	key, value, ok2 := strings.Cut(kv, "=")
	switch {
	case !ok || !ok2:
		return "", "", "", fmt.Errorf("--sysctl %q: want ROLE:KEY=VALUE, e.g. client:net.ipv4.tcp_retries2=5", s)
	case role != "client" && role != "server" && role != "router":
		return "", "", "", fmt.Errorf("--sysctl %q: ROLE must be client, server or router, e.g. client:net.ipv4.tcp_retries2=5", s)
	case !sysctlKey.MatchString(key):
		return "", "", "", fmt.Errorf("--sysctl %q: KEY must be a dotted sysctl name (lowercase letters, digits, '_', '-'; no '/' or '..'), e.g. net.ipv4.tcp_retries2", s)
	case strings.TrimSpace(value) == "":
		return "", "", "", fmt.Errorf("--sysctl %q: VALUE is empty; give one, e.g. client:net.ipv4.tcp_retries2=5", s)
	case strings.ContainsFunc(value, func(r rune) bool { return r != '\t' && !unicode.IsPrint(r) }):
		return "", "", "", fmt.Errorf("--sysctl %q: VALUE holds a control character; use printable characters, fields separated by spaces", s)
	}
	return role, key, value, nil
}
