//go:build linux

// Command sigtrap is a small static helper for the PID 1 / container tests
// of circled (cmd/circled/pid1_linux_test.go and packaging/docker/test.sh).
// It is not part of the product.
//
// OUT is a file that lines are appended to (one write per line, so
// several processes can share it), or "-" for stdout.
//
//	sigtrap trap OUT [PAUSE]       log every signal received ("signal SIGUSR2");
//	                               on SIGTERM/SIGINT: "graceful start", PAUSE
//	                               (default 300ms) of work, "graceful done", exit 0
//	sigtrap log OUT                trap with no pause
//	sigtrap ignore OUT [N]         ignore SIGTERM, start N more such processes in
//	                               the same process group, run until killed
//	sigtrap orphans N MAX [OUT]    start N children, each in its own process
//	                               group, that sleep up to MAX and exit; write
//	                               their pids; exit 0 without waiting
//	sigtrap churn K MAX [PAUSE]    forever: run "orphans K MAX" (whose children
//	                               re-parent), wait for it, pause; drops USR2/WINCH
//	sigtrap setsid OUT             start "ignore OUT" in a new session (an escape
//	                               from the process group), run until killed
//	sigtrap doublefork OUT [DUR]   start a child that starts a grandchild living
//	                               DUR (default 1s) and exits at once: the
//	                               grandchild re-parents; run until killed
//	sigtrap exit N [DELAY]         exit with status N after DELAY
//	sigtrap sleep DUR              sleep, exit 0
//	sigtrap status OUT             write this thread's SigBlk and SigIgn lines
//	                               from /proc, then run until killed
//	sigtrap ps                     list the processes of /proc: "PID PPID STATE ARGS"
//	                               (a scratch image has no ps; zombies show Z)
//	sigtrap wrap [-ignore SIGS] [-block SIGS] -- CMD ARGS...
//	                               exec CMD with SIGS (comma-separated: INT,TERM)
//	                               ignored and/or blocked
//
// Every mode that runs writes "ready MODE pid=N" to OUT first (orphans,
// exit, sleep and wrap excepted).
package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	// status reads the main thread's /proc entry: keep main on it.
	runtime.LockOSThread()
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode, args := os.Args[1], os.Args[2:]
	switch mode {
	case "trap":
		need(args, 1)
		trap(out(args[0]), durArg(args, 1, 300*time.Millisecond))
	case "log":
		need(args, 1)
		trap(out(args[0]), 0)
	case "ignore":
		need(args, 1)
		ignore(args[0], intArg(args, 1, 0))
	case "orphans":
		need(args, 2)
		orphans(atoi(args[0]), dur(args[1]), args[2:])
	case "churn":
		need(args, 2)
		churn(args[0], args[1], durArg(args, 2, 20*time.Millisecond))
	case "setsid":
		need(args, 1)
		escape(args[0])
	case "doublefork":
		need(args, 1)
		doubleFork(args[0], durArg(args, 1, time.Second))
	case "mid":
		// doublefork's middle process: start the grandchild, report it, exit.
		need(args, 2)
		c := self("sleep", args[1])
		must(c.Start())
		out(args[0]).line(fmt.Sprintf("grandchild pid=%d", c.Process.Pid))
		os.Exit(0)
	case "exit":
		need(args, 1)
		time.Sleep(durArg(args, 1, 0))
		os.Exit(atoi(args[0]))
	case "sleep":
		need(args, 1)
		time.Sleep(dur(args[0]))
	case "status":
		need(args, 1)
		status(out(args[0]))
	case "ps":
		ps()
	case "wrap":
		wrap(args)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sigtrap trap|log|ignore|orphans|churn|setsid|doublefork|exit|sleep|status|ps|wrap ... (see the source)")
	os.Exit(2)
}

// output is where a mode writes its lines.
type output struct{ f *os.File }

func out(name string) output {
	if name == "-" {
		return output{os.Stdout}
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(err)
	return output{f}
}

// line writes s and a newline in one write.
func (o output) line(s string) { o.f.Write([]byte(s + "\n")) }

func (o output) ready(mode string) { o.line(fmt.Sprintf("ready %s pid=%d", mode, os.Getpid())) }

func trap(o output, pause time.Duration) {
	// The Go runtime preempts goroutines with SIGURG, which a catch-all
	// Notify would report: turn that off so that every SIGURG logged
	// came from outside.
	if !strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
		env := append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
		exe, err := os.Executable()
		must(err)
		must(syscall.Exec(exe, os.Args, env))
	}
	ch := make(chan os.Signal, 64)
	signal.Notify(ch) // every signal: this helper wants to see them all
	o.ready("trap")
	for s := range ch {
		sig := s.(syscall.Signal)
		o.line("signal " + unix.SignalName(sig))
		if sig == syscall.SIGTERM || sig == syscall.SIGINT {
			o.line(fmt.Sprintf("graceful start pid=%d", os.Getpid()))
			time.Sleep(pause) // the "graceful work"
			o.line(fmt.Sprintf("graceful done pid=%d", os.Getpid()))
			os.Exit(0)
		}
	}
}

func ignore(name string, n int) {
	signal.Ignore(syscall.SIGTERM)
	o := out(name)
	for i := 0; i < n; i++ {
		c := self("ignore", name, "0")
		must(c.Start())
	}
	o.ready("ignore")
	forever()
}

func orphans(n int, max time.Duration, rest []string) {
	var pids []string
	for i := 0; i < n; i++ {
		d := time.Duration(0)
		if max > 0 {
			d = rand.N(max)
		}
		c := self("sleep", d.String())
		// Detached like a daemon's child: its own process group, so that
		// no group kill aimed at this process reaches it.
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		must(c.Start())
		pids = append(pids, strconv.Itoa(c.Process.Pid))
	}
	if len(rest) > 0 {
		out(rest[0]).line("orphans " + strings.Join(pids, " "))
	}
	os.Exit(0) // no Wait: the children re-parent
}

func churn(k, max string, pause time.Duration) {
	// Signals circled forwards must not end the load generator.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR2, syscall.SIGWINCH)
	for {
		c := self("orphans", k, max)
		if err := c.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "sigtrap churn:", err)
		}
		time.Sleep(pause)
	}
}

func escape(name string) {
	o := out(name)
	c := self("ignore", name, "0")
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	must(c.Start())
	o.line(fmt.Sprintf("escaped pid=%d", c.Process.Pid))
	o.ready("setsid")
	forever()
}

func doubleFork(name string, life time.Duration) {
	o := out(name)
	c := self("mid", name, life.String())
	must(c.Run())
	o.ready("doublefork")
	forever()
}

func status(o output) {
	b, err := os.ReadFile("/proc/thread-self/status")
	must(err)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "SigBlk:") || strings.HasPrefix(l, "SigIgn:") {
			o.line(l)
		}
	}
	o.ready("status")
	forever()
}

func ps() {
	ents, err := os.ReadDir("/proc")
	must(err)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state ppid ...
		if len(f) < 2 {
			continue
		}
		args, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cmd := strings.TrimSpace(strings.ReplaceAll(string(args), "\x00", " "))
		if cmd == "" {
			cmd = "[" + s[strings.IndexByte(s, '(')+1:i] + "]"
		}
		fmt.Printf("%d %s %s %s\n", pid, f[1], f[0], cmd)
	}
}

func wrap(args []string) {
	var ign, blk []syscall.Signal
	for len(args) > 0 && args[0] != "--" {
		if len(args) < 2 {
			usage()
		}
		switch args[0] {
		case "-ignore":
			ign = sigList(args[1])
		case "-block":
			blk = sigList(args[1])
		default:
			usage()
		}
		args = args[2:]
	}
	if len(args) < 2 {
		usage()
	}
	path, err := exec.LookPath(args[1])
	must(err)
	for _, s := range ign {
		signal.Ignore(s) // SIG_IGN survives execve
	}
	var set unix.Sigset_t
	bits := uint(unsafe.Sizeof(set.Val[0]) * 8) // 64, or 32 on 32-bit
	for _, s := range blk {
		i := uint(s) - 1
		set.Val[i/bits] |= 1 << (i % bits)
	}
	// init locked main to this thread; its mask survives execve.
	must(unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil))
	must(syscall.Exec(path, args[1:], os.Environ()))
}

// forever blocks until a signal ends the process (a bare select {} with
// no other goroutine would be reported as a deadlock).
func forever() {
	for {
		time.Sleep(time.Hour)
	}
}

func sigList(s string) []syscall.Signal {
	var out []syscall.Signal
	for _, name := range strings.Split(s, ",") {
		sig := unix.SignalNum("SIG" + strings.TrimPrefix(strings.ToUpper(name), "SIG"))
		if sig == 0 {
			fmt.Fprintf(os.Stderr, "sigtrap: unknown signal %q\n", name)
			os.Exit(2)
		}
		out = append(out, sig)
	}
	return out
}

// self is a command running this binary in another mode.
func self(args ...string) *exec.Cmd {
	exe, err := os.Executable()
	must(err)
	c := exec.Command(exe, args...)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	return c
}

func need(args []string, n int) {
	if len(args) < n {
		usage()
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	must(err)
	return n
}

func dur(s string) time.Duration {
	d, err := time.ParseDuration(s)
	must(err)
	return d
}

func durArg(args []string, i int, def time.Duration) time.Duration {
	if len(args) <= i {
		return def
	}
	return dur(args[i])
}

func intArg(args []string, i, def int) int {
	if len(args) <= i {
		return def
	}
	return atoi(args[i])
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigtrap:", err)
		os.Exit(111)
	}
}
