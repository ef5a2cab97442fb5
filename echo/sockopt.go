package echo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Keepalive holds the TCP keepalive parameters to set on a socket.
type Keepalive struct {
	Idle     time.Duration
	Interval time.Duration
	Count    int
}

// Sockopts is the set of socket options actually in effect, read back with getsockopt.
type Sockopts struct {
	Keepalive     bool `json:"keepalive"`
	KeepIdleS     int  `json:"keepidle_s"`
	KeepIntvlS    int  `json:"keepintvl_s"`
	KeepCnt       int  `json:"keepcnt"`
	UserTimeoutMS int  `json:"user_timeout_ms"`
	NoDelay       bool `json:"nodelay"`
}

// ParseKeepalive parses "off" (nil, keepalive left off) or "IDLE,INTVL,CNT",
// where IDLE and INTVL are durations ("5s") or whole seconds ("5").
func ParseKeepalive(s string) (*Keepalive, error) {
	if s == "" || s == "off" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return nil, fmt.Errorf("keepalive %q: want off or IDLE,INTVL,CNT", s)
	}
	idle, err := parseSeconds(parts[0])
	if err != nil {
		return nil, fmt.Errorf("keepalive idle: %w", err)
	}
	intvl, err := parseSeconds(parts[1])
	if err != nil {
		return nil, fmt.Errorf("keepalive interval: %w", err)
	}
	cnt, err := strconv.Atoi(strings.TrimSpace(parts[2]))
	if err != nil || cnt < 1 {
		return nil, fmt.Errorf("keepalive count %q: want a positive integer", parts[2])
	}
	return &Keepalive{Idle: idle, Interval: intvl, Count: cnt}, nil
}

func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		s = strconv.Itoa(n) + "s"
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	if d < time.Second {
		return 0, fmt.Errorf("%v: the kernel takes whole seconds, at least 1s", d)
	}
	return d, nil
}

// ceilSeconds rounds d up to whole seconds, as the kernel counts them.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// ApplyKeepalive sets SO_KEEPALIVE and, if ka is non-nil, TCP_KEEPIDLE,
// TCP_KEEPINTVL and TCP_KEEPCNT on fd; a nil ka turns keepalive off.
func ApplyKeepalive(fd int, ka *Keepalive) error {
	if ka == nil {
		return setInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0, "SO_KEEPALIVE")
	}
	opts := []struct {
		level, opt, val int
		name            string
	}{
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, ceilSeconds(ka.Idle), "TCP_KEEPIDLE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, ceilSeconds(ka.Interval), "TCP_KEEPINTVL"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, ka.Count, "TCP_KEEPCNT"},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
	}
	for _, o := range opts {
		if err := setInt(fd, o.level, o.opt, o.val, o.name); err != nil {
			return err
		}
	}
	return nil
}

// ApplyUserTimeout sets TCP_USER_TIMEOUT on fd (0 restores the kernel default).
func ApplyUserTimeout(fd int, d time.Duration) error {
	return setInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond), "TCP_USER_TIMEOUT")
}

// ApplyNoDelay sets TCP_NODELAY on fd.
func ApplyNoDelay(fd int, on bool) error {
	v := 0
	if on {
		v = 1
	}
	return setInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, v, "TCP_NODELAY")
}

func setInt(fd, level, opt, val int, name string) error {
	if err := unix.SetsockoptInt(fd, level, opt, val); err != nil {
		return fmt.Errorf("setsockopt %s=%d: %w", name, val, err)
	}
	return nil
}

// ReadSockopts reads back the keepalive, user-timeout and nodelay settings of
// the socket behind rc.
func ReadSockopts(rc syscall.RawConn) (Sockopts, error) {
	var s Sockopts
	var errs []error
	get := func(fd, level, opt int, name string) int {
		v, err := unix.GetsockoptInt(fd, level, opt)
		if err != nil {
			errs = append(errs, fmt.Errorf("getsockopt %s: %w", name, err))
		}
		return v
	}
	err := rc.Control(func(fdp uintptr) {
		fd := int(fdp)
		s.Keepalive = get(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, "SO_KEEPALIVE") != 0
		s.KeepIdleS = get(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, "TCP_KEEPIDLE")
		s.KeepIntvlS = get(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, "TCP_KEEPINTVL")
		s.KeepCnt = get(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, "TCP_KEEPCNT")
		s.UserTimeoutMS = get(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT")
		s.NoDelay = get(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, "TCP_NODELAY") != 0
	})
	if err != nil {
		return s, fmt.Errorf("read sockopts: %w", err)
	}
	return s, errors.Join(errs...)
}
