package guestinit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// listenRetries and listenBackoff bound the wait for the SSH address.
const (
	listenRetries = 40
	listenBackoff = 250 * time.Millisecond
)

// initState is what the PID 1 main loop needs after boot.
type initState struct {
	log   *Logger
	cfg   Config
	power *powerButton
	fatal chan string
}

// runInit boots the guest and then serves power requests forever. If boot
// cannot continue, it logs why and powers off; it never returns normally.
func runInit() {
	reserved := reserveStdio()
	log := NewLogger("init", os.Stderr)
	st := &initState{log: log, cfg: Config{Grace: DefaultGrace}, fatal: make(chan string, 1)}
	defer func() {
		r := recover()
		log.Logf("init main loop ended unexpectedly (%v); powering off", r)
		shutdown(log, PowerOff, st.cfg.Grace, "init failure")
		select {} // reboot(2) failed: never exit, or the kernel panics
	}()
	// Ask early so no power request is lost while booting; SIGINT comes from
	// ctrl-alt-del once CAD is switched off.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGUSR1, unix.SIGUSR2, unix.SIGTERM, unix.SIGINT)
	ignored := make(chan os.Signal, 8)
	signal.Notify(ignored, unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE, unix.SIGALRM, unix.SIGVTALRM,
		unix.SIGXCPU, unix.SIGXFSZ, unix.SIGSTKFLT, unix.SIGPWR, unix.SIGTTIN, unix.SIGTTOU)
	go logIgnored(log, ignored)
	st.boot(reserved)
	st.loop(sigs)
}

func (st *initState) boot(reservedStdio bool) {
	log := st.log
	t0 := time.Now()
	setupEnv()
	mountErr := mountAll()
	log.SetOutputs(consoleOutputs(reservedStdio)...)
	if mountErr != nil {
		logLines(log, "mount: FAILED: ", mountErr)
	}
	tMounts := time.Now()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		log.Logf("ctrl-alt-del to SIGINT: %v", err)
	}
	if raw, err := os.ReadFile("/proc/cmdline"); err != nil {
		log.Logf("read kernel command line: %v (using defaults)", err)
	} else {
		cfg, err := ParseCmdline(string(raw))
		st.cfg = cfg
		if cfg.Name != "" {
			log.SetName(cfg.Name)
		}
		if err != nil {
			logLines(log, "bad kernel parameter (ignored): ", err)
		}
	}
	log.Logf("booting: ssh %s, %d interface(s), %d sysctl(s), grace %s", st.cfg.SSHAddr, len(st.cfg.Nets), len(st.cfg.Sysctls), st.cfg.Grace)
	procs := NewReapingProcTable(log.Logf)

	loadModules(log)
	tModules := time.Now()
	st.power = newPowerButton(log)
	st.power.scan()
	go st.power.rescan()

	if st.cfg.Name != "" {
		if err := unix.Sethostname([]byte(st.cfg.Name)); err != nil {
			log.Logf("set hostname %q: %v", st.cfg.Name, err)
		}
	}
	applySysctls(log, st.cfg.Sysctls)
	go saveSysctlBaseline(log, st.cfg.Sysctls)
	if err := configureNetwork(log, st.cfg.Nets); err != nil {
		logLines(log, "net: FAILED: ", err)
	}
	tNet := time.Now()

	hostKey, authorized, err := LoadSSHKeys(hostKeyPath, authorizedKeysPath)
	if err != nil {
		st.fatal <- err.Error()
		return
	}
	ln, err := st.listen()
	if err != nil {
		st.fatal <- err.Error()
		return
	}
	tSSH := time.Now()
	srv := NewSSHServer(hostKey, authorized, procs)
	srv.Logf = log.Logf
	go st.serveSSH(srv, ln)
	log.Logf("hostlab-init: ready ssh=%s boot: mounts=%s modules=%s net=%s ssh=%s total=%s (kernel uptime %s)",
		ln.Addr(), ms(tMounts.Sub(t0)), ms(tModules.Sub(tMounts)), ms(tNet.Sub(tModules)),
		ms(tSSH.Sub(tNet)), ms(tSSH.Sub(t0)), ms(Monotonic()))
}

// listen listens on the configured SSH address, retrying while the address
// is not yet usable.
func (st *initState) listen() (net.Listener, error) {
	var lastErr error
	for i := 0; i < listenRetries; i++ {
		ln, err := net.Listen("tcp", st.cfg.SSHAddr)
		if err == nil {
			return ln, nil
		}
		if i == 0 {
			st.log.Logf("ssh: listen on %s: %v (retrying)", st.cfg.SSHAddr, err)
		}
		lastErr = err
		time.Sleep(listenBackoff)
	}
	return nil, fmt.Errorf("ssh listen on %s: %w", st.cfg.SSHAddr, lastErr)
}

// serveSSH runs the SSH server, restarting it after a panic.
func (st *initState) serveSSH(srv *SSHServer, ln net.Listener) {
	for {
		func() {
			defer recoverLog(st.log, "ssh server")
			if err := srv.Serve(context.Background(), ln); err != nil {
				st.log.Logf("ssh server: %v (listening again)", err)
			}
		}()
		time.Sleep(time.Second)
		_ = ln.Close()
		if nl, err := net.Listen("tcp", st.cfg.SSHAddr); err == nil {
			ln = nl
		}
	}
}

// loop waits for power requests (signals, power button, a fatal error) and
// runs the shutdown sequence for the first one.
func (st *initState) loop(sigs <-chan os.Signal) {
	var (
		action PowerAction
		reason string
	)
	select {
	case s := <-sigs:
		sig, _ := s.(unix.Signal)
		action, reason = actionForSignal(sig), "signal "+unix.SignalName(sig)
	case <-st.powerPressed():
		action, reason = PowerOff, "ACPI power button"
	case msg := <-st.fatal:
		st.log.Logf("FATAL: %s; cannot continue", msg)
		action, reason = PowerOff, "init failure"
	}
	go func() { // later requests only get logged
		for s := range sigs {
			sig, _ := s.(unix.Signal)
			st.log.Logf("%s ignored: shutdown already in progress", unix.SignalName(sig))
		}
	}()
	shutdown(st.log, action, st.cfg.Grace, reason)
	select {}
}

func (st *initState) powerPressed() <-chan struct{} {
	if st.power == nil {
		return nil
	}
	return st.power.pressed
}

// logIgnored logs the caught signals whose default action would make the Go
// runtime exit (PID 1 exiting panics the kernel). Catching rather than
// ignoring them keeps children's dispositions at their defaults.
func logIgnored(log *Logger, ch <-chan os.Signal) {
	defer recoverLog(log, "signal logger")
	for s := range ch {
		if sig, _ := s.(unix.Signal); sig != unix.SIGPIPE {
			log.Logf("%s ignored", unix.SignalName(sig))
		}
	}
}

// actionForSignal maps a signal to PID 1 to its power action (busybox).
func actionForSignal(s unix.Signal) PowerAction {
	switch s {
	case unix.SIGUSR1:
		return Halt
	case unix.SIGUSR2:
		return PowerOff
	}
	return Reboot // SIGTERM, SIGINT (ctrl-alt-del)
}

// logLines logs each line of err's message with prefix.
func logLines(log *Logger, prefix string, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		log.Logf("%s%s", prefix, line)
	}
}

func ms(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}
