package guestinit

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by ParseCmdline when a parameter is absent.
const (
	DefaultSSHAddr = ":22"
	DefaultGrace   = 5 * time.Second
)

// Config is the guest configuration taken from the kernel command line.
type Config struct {
	Name    string        // hostlab.name: hostname and log prefix; empty keeps the kernel's
	Nets    []NetConfig   // hostlab.net, in command-line order
	SSHAddr string        // hostlab.ssh: listen address, DefaultSSHAddr when absent
	Sysctls []Sysctl      // hostlab.sysctl, in command-line order
	Grace   time.Duration // hostlab.grace: SIGTERM-to-SIGKILL grace at shutdown
}

// NetConfig configures one interface, found by its hardware address.
type NetConfig struct {
	MAC     net.HardwareAddr
	Addr    netip.Prefix // host address with its prefix length, e.g. 10.0.0.2/24
	Gateway netip.Addr   // zero when no default route is wanted
}

// Sysctl is one KEY=VALUE kernel parameter, KEY in dotted form.
type Sysctl struct {
	Key   string
	Value string
}

// Path returns the /proc/sys file for the sysctl key.
func (s Sysctl) Path() string {
	return "/proc/sys/" + strings.ReplaceAll(s.Key, ".", "/")
}

// ParseCmdline parses the hostlab.* parameters of a kernel command line and
// ignores every other parameter. It always returns the usable part of the
// configuration; the error, if any, joins one error per rejected parameter so
// that init can log it and carry on.
func ParseCmdline(cmdline string) (Config, error) {
	cfg := Config{SSHAddr: DefaultSSHAddr, Grace: DefaultGrace}
	var errs []error
	for _, tok := range splitCmdline(cmdline) {
		key, val, _ := strings.Cut(tok, "=")
		if !strings.HasPrefix(key, "hostlab.") {
			continue
		}
		if err := cfg.apply(key, val); err != nil {
			errs = append(errs, fmt.Errorf("kernel parameter %q: %w", tok, err))
		}
	}
	return cfg, errors.Join(errs...)
}

func (cfg *Config) apply(key, val string) error {
	switch key {
	case "hostlab.name":
		if err := validHostname(val); err != nil {
			return err
		}
		cfg.Name = val
	case "hostlab.net":
		n, err := parseNet(val)
		if err != nil {
			return err
		}
		cfg.Nets = append(cfg.Nets, n)
	case "hostlab.ssh":
		if err := validListenAddr(val); err != nil {
			return err
		}
		cfg.SSHAddr = val
	case "hostlab.sysctl":
		s, err := parseSysctl(val)
		if err != nil {
			return err
		}
		cfg.Sysctls = append(cfg.Sysctls, s)
	case "hostlab.grace":
		d, err := time.ParseDuration(val)
		if err != nil {
			return fmt.Errorf("bad grace duration: %w", err)
		}
		if d < 0 {
			return fmt.Errorf("negative grace duration %s", d)
		}
		cfg.Grace = d
	default:
		return errors.New("unknown hostlab parameter")
	}
	return nil
}

func validHostname(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("hostname must have 1 to 64 characters, got %d", len(s))
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return fmt.Errorf("hostname %q has invalid character %q", s, r)
		}
	}
	return nil
}

// parseNet parses MAC,IP/PREFIX[,GATEWAY].
func parseNet(val string) (NetConfig, error) {
	parts := strings.Split(val, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return NetConfig{}, fmt.Errorf("want MAC,IP/PREFIX[,GATEWAY], got %d fields", len(parts))
	}
	var n NetConfig
	mac, err := net.ParseMAC(parts[0])
	if err != nil {
		return NetConfig{}, fmt.Errorf("bad MAC: %w", err)
	}
	n.MAC = mac
	if n.Addr, err = netip.ParsePrefix(parts[1]); err != nil {
		return NetConfig{}, fmt.Errorf("bad address: %w", err)
	}
	if len(parts) == 3 {
		if n.Gateway, err = netip.ParseAddr(parts[2]); err != nil {
			return NetConfig{}, fmt.Errorf("bad gateway: %w", err)
		}
		if n.Gateway.Is4() != n.Addr.Addr().Is4() {
			return NetConfig{}, fmt.Errorf("gateway %s and address %s differ in family", n.Gateway, n.Addr)
		}
	}
	return n, nil
}

func validListenAddr(val string) error {
	host, port, err := net.SplitHostPort(val)
	if err != nil {
		return fmt.Errorf("bad ssh listen address: %w", err)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("bad ssh listen host: %w", err)
		}
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("bad ssh listen port %q", port)
	}
	return nil
}

func parseSysctl(val string) (Sysctl, error) {
	key, value, ok := strings.Cut(val, "=")
	if !ok || key == "" {
		return Sysctl{}, errors.New("want KEY=VALUE")
	}
	if strings.HasPrefix(key, "/") || strings.HasPrefix(key, ".") || strings.Contains(key, "..") {
		return Sysctl{}, fmt.Errorf("bad sysctl key %q", key)
	}
	return Sysctl{Key: key, Value: value}, nil
}

// splitCmdline splits a kernel command line on white space, honouring double
// quotes the way the kernel does (quotes group, and are removed).
func splitCmdline(s string) []string {
	var toks []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				toks = append(toks, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		toks = append(toks, cur.String())
	}
	return toks
}
