//go:build linux || darwin

package main

// Black-box tests of the real circled and circlectl binaries: every script
// in testdata/script runs with both binaries (built with -race) on its PATH
// and CIRCLED_SOCKET pointing at a socket of its own.
//
// Custom commands (see scriptCmds) poll with a deadline; none sleeps a
// fixed time to "let it happen".

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/testhelper"
	"golang.org/x/sys/unix"
)

// binDir holds the circled and circlectl binaries TestMain builds.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "circled-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, name := range []string{"circled", "circlectl"} {
		cmd := exec.Command("go", "build", "-race", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = filepath.Join("..", "..") // the module root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", name, err, out)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}

func TestScript(t *testing.T) {
	if testing.Short() {
		t.Skip("black-box scripts run real daemons; skipped with -short")
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		Setup:               setupScript,
		Cmds:                scriptCmds,
		RequireExplicitExec: true,
	})
}

// state is one script's bookkeeping, kept in its Env.Values.
type state struct {
	socket string
	mu     sync.Mutex
	pids   map[int]bool // every child pid a command has seen, killed at the end
	conns  []net.Conn   // connections opened by halfopen
	marks  map[string]time.Time
}

type stateKey struct{}

func setupScript(env *testscript.Env) error {
	// $WORK may be too long for a unix socket path (< 104 bytes).
	sockDir, err := os.MkdirTemp("", "cs")
	if err != nil {
		return err
	}
	st := &state{
		socket: filepath.Join(sockDir, "c.sock"),
		pids:   map[int]bool{},
		marks:  map[string]time.Time{},
	}
	env.Values[stateKey{}] = st
	env.Setenv("PATH", binDir+string(os.PathListSeparator)+env.Getenv("PATH"))
	env.Setenv("CIRCLED_SOCKET", st.socket)
	env.Setenv("SOCKDIR", sockDir)
	// A -race binary sleeps 1s before exiting unless told otherwise; a
	// data race still makes it exit 66, which fails `wait d`.
	env.Setenv("GORACE", "atexit_sleep_ms=10")
	env.Defer(func() {
		// Deferred functions run before testscript interrupts background
		// commands: ask a daemon still running to stop its watchers first.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st.client().Quit(ctx, true)
		cancel()
		st.mu.Lock()
		defer st.mu.Unlock()
		for _, c := range st.conns {
			c.Close()
		}
		// A failed script may leave children behind (a daemon killed or
		// stuck): kill the process group of every child seen.
		for pid := range st.pids {
			if ok, _ := testhelper.Wait(2*time.Second, func() (bool, string) { return !isAlive(pid), "" }); !ok {
				env.T().Log("killing leftover process group ", pid)
				syscall.Kill(-pid, syscall.SIGKILL)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		os.RemoveAll(sockDir)
	})
	return nil
}

func getState(ts *testscript.TestScript) *state {
	return ts.Value(stateKey{}).(*state)
}

func (st *state) client() *ctl.Client { return ctl.NewClient(st.socket) }

func (st *state) remember(pids ...int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, p := range pids {
		if p > 0 {
			st.pids[p] = true
		}
	}
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"waitstatus": cmdWaitStatus,
	"pids":       cmdPids,
	"newpid":     cmdNewPid,
	"waitexit":   cmdWaitExit,
	"daemonpid":  cmdDaemonPid,
	"killpid":    cmdKillPid,
	"alive":      cmdAlive,
	"gone":       cmdGone,
	"findprocs":  cmdFindProcs,
	"waitfile":   cmdWaitFile,
	"mark":       cmdMark,
	"since":      cmdSince,
	"rawsock":    cmdRawSock,
	"bigbody":    cmdBigBody,
	"halfopen":   cmdHalfOpen,
	"waitclosed": cmdWaitClosed,
	"exitcode":   cmdExitCode,
	// For the config-directory watch (watch_*.txtar).
	"waitlog":       cmdWaitLog,
	"countlog":      cmdCountLog,
	"waitreloaderr": cmdWaitReloadErr,
	"nowatcher":     cmdNoWatcher,
	"burst":         cmdBurst,
}

const defaultTimeout = 10 * time.Second

// callTimeout bounds one status or list call inside a wait: for a daemon
// that does not answer, not a latency target. A wait whose every attempt
// is cut at 2 s can never succeed against a daemon that takes longer,
// which a -race daemon on a loaded host can (status took 2.5 s in
// TestOwnerStatusDuringMassSpawn).
const callTimeout = 10 * time.Second

// timeoutArg parses an optional duration argument ("5s", or seconds "5").
func timeoutArg(ts *testscript.TestScript, args []string, i int) time.Duration {
	if len(args) <= i {
		return defaultTimeout
	}
	return parseDuration(ts, args[i])
}

func parseDuration(ts *testscript.TestScript, s string) time.Duration {
	if d, err := time.ParseDuration(s); err == nil {
		return d
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		ts.Fatalf("bad duration %q", s)
	}
	return time.Duration(f * float64(time.Second))
}

func (st *state) watcher(name string) (ctl.WatcherStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	s, err := st.client().Status(ctx, []string{name})
	if err != nil {
		return ctl.WatcherStatus{}, err
	}
	for _, w := range s.Watchers {
		if w.Name == name {
			pids := make([]int, 0, len(w.Processes))
			for _, p := range w.Processes {
				pids = append(pids, p.PID)
			}
			st.remember(pids...)
			return w, nil
		}
	}
	return ctl.WatcherStatus{}, fmt.Errorf("watcher %s not in status", name)
}

func describe(w ctl.WatcherStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s numprocesses=%d", w.Name, w.State, w.NumProcesses)
	if w.Error != "" {
		fmt.Fprintf(&b, " error=%q", w.Error)
	}
	for _, p := range w.Processes {
		fmt.Fprintf(&b, " [wid=%d pid=%d %s restarts=%d]", p.WID, p.PID, p.State, p.Restarts)
	}
	return b.String()
}

// allRunning reports whether w has its numprocesses processes, all running.
func allRunning(w ctl.WatcherStatus) bool {
	if len(w.Processes) != w.NumProcesses {
		return false
	}
	for _, p := range w.Processes {
		if p.State != "running" || p.PID <= 0 {
			return false
		}
	}
	return true
}

// waitstatus NAME STATE [TIMEOUT]: wait until watcher NAME is in STATE;
// for "active", also until its numprocesses processes are all running.
func cmdWaitStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitstatus NAME STATE [TIMEOUT]")
	}
	st := getState(ts)
	name, want := args[0], args[1]
	ok, desc := testhelper.Wait(timeoutArg(ts, args, 2), func() (bool, string) {
		w, err := st.watcher(name)
		if err != nil {
			return false, err.Error()
		}
		return w.State == want && (want != "active" || allRunning(w)), describe(w)
	})
	if !ok {
		ts.Fatalf("watcher %s never reached %s; last: %s", name, want, desc)
	}
	ts.Logf("%s", desc)
}

// pids NAME VAR...: wait until watcher NAME runs exactly len(VAR) processes,
// all running, and store their pids (in wid order) in the VARs.
func cmdPids(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: pids NAME VAR...")
	}
	st := getState(ts)
	name, vars := args[0], args[1:]
	var w ctl.WatcherStatus
	ok, desc := testhelper.Wait(defaultTimeout, func() (bool, string) {
		var err error
		w, err = st.watcher(name)
		if err != nil {
			return false, err.Error()
		}
		return len(w.Processes) == len(vars) && allRunning(w), describe(w)
	})
	if !ok {
		ts.Fatalf("watcher %s never had %d running processes; last: %s", name, len(vars), desc)
	}
	for i, v := range vars {
		ts.Setenv(v, strconv.Itoa(w.Processes[i].PID))
	}
	ts.Logf("%s", desc)
}

// newpid NAME OLDPID VAR: wait until the process that had OLDPID in watcher
// NAME's slot is replaced by a running one; store the new pid in VAR.
// The slot is found by OLDPID's position; with one process it is wid 1.
func cmdNewPid(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: newpid NAME OLDPID VAR")
	}
	st := getState(ts)
	name, old := args[0], atoi(ts, args[1])
	var pid int
	ok, desc := testhelper.Wait(defaultTimeout, func() (bool, string) {
		w, err := st.watcher(name)
		if err != nil {
			return false, err.Error()
		}
		if !allRunning(w) {
			return false, describe(w)
		}
		for _, p := range w.Processes {
			if p.PID == old {
				return false, describe(w)
			}
		}
		pid = w.Processes[0].PID
		return true, describe(w)
	})
	if !ok {
		ts.Fatalf("pid %d of %s never replaced; last: %s", old, name, desc)
	}
	ts.Setenv(args[2], strconv.Itoa(pid))
	ts.Logf("%s", desc)
}

// waitexit NAME WID RESTARTS CODE|SIGNAL: wait until process WID of NAME
// has been restarted RESTARTS times and its last exit was CODE (a number)
// or SIGNAL (KILL, TERM, ...).
func cmdWaitExit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: waitexit NAME WID RESTARTS CODE|SIGNAL")
	}
	st := getState(ts)
	wid, restarts := atoi(ts, args[1]), natoi(ts, args[2])
	want := args[3]
	ok, desc := testhelper.Wait(defaultTimeout, func() (bool, string) {
		w, err := st.watcher(args[0])
		if err != nil {
			return false, err.Error()
		}
		for _, p := range w.Processes {
			if p.WID != wid {
				continue
			}
			got := p.LastExit.Signal
			if got == "" {
				got = strconv.Itoa(p.LastExit.Code)
			}
			d := fmt.Sprintf("%s last_exit=%+v", describe(w), p.LastExit)
			return p.Restarts == restarts && got == want, d
		}
		return false, describe(w)
	})
	if !ok {
		ts.Fatalf("process %s.%d never had restarts=%d last exit %s; last: %s", args[0], wid, restarts, want, desc)
	}
	ts.Logf("%s", desc)
}

// daemonpid VAR: store the daemon's pid (from its version reply) in VAR.
func cmdDaemonPid(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: daemonpid VAR")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := getState(ts).client().Version(ctx)
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(v.PID))
}

// killpid SIG PID...: send SIG (HUP, TERM, KILL, ABRT, 15, ...) to each PID.
func cmdKillPid(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: killpid SIG PID...")
	}
	sig := scriptSignal(ts, args[0])
	for _, a := range args[1:] {
		ts.Check(syscall.Kill(atoi(ts, a), sig))
	}
}

// scriptSignal parses "TERM", "-TERM", "SIGTERM" or "15".
func scriptSignal(ts *testscript.TestScript, s string) syscall.Signal {
	s = strings.TrimPrefix(s, "-")
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return syscall.Signal(n)
	}
	sig := unix.SignalNum("SIG" + strings.TrimPrefix(s, "SIG"))
	if sig == 0 {
		ts.Fatalf("unknown signal %q", s)
	}
	return sig
}

// natoi parses a number >= 0.
func natoi(ts *testscript.TestScript, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		ts.Fatalf("bad number %q", s)
	}
	return n
}

// atoi parses a number > 0 (a pid, a wid).
func atoi(ts *testscript.TestScript, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		ts.Fatalf("bad pid or number %q", s)
	}
	return n
}

// isAlive reports whether pid exists and is not a zombie (an orphan's
// zombie may linger where pid 1 does not reap).
func isAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ESRCH)
	}
	// pid (comm) STATE ...; comm may hold spaces or parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// alive PID...: each PID exists (and is not a zombie).
func cmdAlive(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: alive PID...")
	}
	for _, a := range args {
		if isAlive(atoi(ts, a)) == neg {
			if neg {
				ts.Fatalf("process %s is alive", a)
			}
			ts.Fatalf("process %s is not alive", a)
		}
	}
}

// gone PID... [TIMEOUT=DURATION]: wait until no PID exists any more.
func cmdGone(ts *testscript.TestScript, neg bool, args []string) {
	timeout := defaultTimeout
	if n := len(args); n > 0 && strings.HasPrefix(args[n-1], "timeout=") {
		timeout = parseDuration(ts, strings.TrimPrefix(args[n-1], "timeout="))
		args = args[:n-1]
	}
	if neg || len(args) == 0 {
		ts.Fatalf("usage: gone PID... [timeout=DURATION]")
	}
	ok, desc := testhelper.Wait(timeout, func() (bool, string) {
		var left []string
		for _, a := range args {
			if isAlive(atoi(ts, a)) {
				left = append(left, a)
			}
		}
		return len(left) == 0, strings.Join(left, " ")
	})
	if !ok {
		ts.Fatalf("still alive after %v: %s", timeout, desc)
	}
}

// procs returns the live processes of process group pgid whose command
// line (arguments joined by spaces) is cmdline.
func procs(pgid int, cmdline string) []int {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return psProcs(pgid, cmdline)
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if strings.Join(args, " ") == cmdline && procGroup(pid) == pgid && isAlive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// procGroup is pid's process group from /proc/PID/stat, or -1.
func procGroup(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	// After "(comm)": state ppid pgrp ...
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return -1
	}
	g, err := strconv.Atoi(f[2])
	if err != nil {
		return -1
	}
	return g
}

// psProcs is procs where there is no /proc (macOS).
func psProcs(pgid int, cmdline string) []int {
	out, _ := exec.Command("ps", "-axo", "pid=,pgid=,args=").Output()
	var pids []int
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.Join(f[2:], " ") != cmdline || f[1] != strconv.Itoa(pgid) {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err == nil && isAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// findprocs PGID CMDLINE VAR...: wait until exactly len(VAR) processes of
// process group PGID (a watcher's pid: each child leads its own group)
// run CMDLINE (e.g. 'sleep 1234'); store their pids in the VARs.
// ! findprocs PGID CMDLINE: no process of group PGID runs CMDLINE.
func cmdFindProcs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || (neg && len(args) != 2) || (!neg && len(args) < 3) {
		ts.Fatalf("usage: findprocs PGID CMDLINE VAR... | ! findprocs PGID CMDLINE")
	}
	pgid, cmdline := atoi(ts, args[0]), args[1]
	if neg {
		if p := procs(pgid, cmdline); len(p) > 0 {
			ts.Fatalf("processes of group %d still run %q: %v", pgid, cmdline, p)
		}
		return
	}
	vars := args[2:]
	var found []int
	ok, _ := testhelper.Wait(defaultTimeout, func() (bool, string) {
		found = procs(pgid, cmdline)
		return len(found) == len(vars), ""
	})
	if !ok {
		ts.Fatalf("want %d processes of group %d running %q, found %v", len(vars), pgid, cmdline, found)
	}
	getState(ts).remember(found...)
	for i, v := range vars {
		ts.Setenv(v, strconv.Itoa(found[i]))
	}
}

// waitfile FILE [TIMEOUT]: wait until FILE exists and is not empty.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfile FILE [TIMEOUT]")
	}
	path := ts.MkAbs(args[0])
	ok, _ := testhelper.Wait(timeoutArg(ts, args, 1), func() (bool, string) {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() > 0, ""
	})
	if !ok {
		ts.Fatalf("%s never appeared", args[0])
	}
}

// mark NAME: remember the current time as NAME.
func cmdMark(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mark NAME")
	}
	st := getState(ts)
	st.mu.Lock()
	st.marks[args[0]] = time.Now()
	st.mu.Unlock()
}

// since NAME MIN MAX: the time since mark NAME is within [MIN, MAX).
func cmdSince(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: since NAME MIN MAX")
	}
	st := getState(ts)
	st.mu.Lock()
	t0, ok := st.marks[args[0]]
	st.mu.Unlock()
	if !ok {
		ts.Fatalf("no mark %q", args[0])
	}
	d := time.Since(t0)
	lo, hi := parseDuration(ts, args[1]), parseDuration(ts, args[2])
	ts.Logf("%s: %v", args[0], d)
	if d < lo || d >= hi {
		ts.Fatalf("%v since %s, want in [%v, %v)", d, args[0], lo, hi)
	}
}

func dialSocket(ts *testscript.TestScript) net.Conn {
	c, err := net.DialTimeout("unix", getState(ts).socket, 5*time.Second)
	ts.Check(err)
	return c
}

// rawsock FILE: write FILE's bytes to the control socket as they are,
// half-close, and print what the daemon answers (up to its close or 10s).
func cmdRawSock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: rawsock FILE")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	c := dialSocket(ts)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write(data)
	ts.Check(err)
	c.(*net.UnixConn).CloseWrite()
	reply, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		ts.Fatalf("reading reply: %v (got %q)", err, reply)
	}
	fmt.Fprintf(ts.Stdout(), "%s", reply)
}

// bigbody METHOD PATH SIZE: send an HTTP request whose body is SIZE bytes
// (streamed; the daemon may stop reading early) and print the status line
// of the reply.
func cmdBigBody(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: bigbody METHOD PATH SIZE")
	}
	size := atoi(ts, args[2])
	c := dialSocket(ts)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: circled\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", args[0], args[1], size)
	go func() {
		// The daemon may answer and close before reading it all: ignore
		// write errors.
		chunk := []byte(strings.Repeat("x", 64<<10))
		for n := 0; n < size; n += len(chunk) {
			if _, err := c.Write(chunk[:min(len(chunk), size-n)]); err != nil {
				return
			}
		}
	}()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		ts.Fatalf("no reply to a %d-byte body: %v", size, err)
	}
	fmt.Fprintf(ts.Stdout(), "%s", line)
}

// halfopen: open a connection, write half a request, and leave it open
// (until waitclosed or the end of the script).
func cmdHalfOpen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: halfopen")
	}
	c := dialSocket(ts)
	_, err := io.WriteString(c, "GET /v1/watchers HTTP/1.1\r\nHost: cir")
	ts.Check(err)
	st := getState(ts)
	st.mu.Lock()
	st.conns = append(st.conns, c)
	st.mu.Unlock()
}

// exitcode N PROG ARGS...: run PROG like exec and require exit status N;
// stdout and stderr are kept for the next stdout/stderr commands.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("bad exit code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// waitclosed [TIMEOUT]: wait until the daemon has closed every connection
// halfopen opened, and print what it sent on them.
func cmdWaitClosed(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: waitclosed [TIMEOUT]")
	}
	timeout := timeoutArg(ts, args, 0)
	st := getState(ts)
	st.mu.Lock()
	conns := st.conns
	st.conns = nil
	st.mu.Unlock()
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(timeout))
		reply, err := io.ReadAll(c)
		c.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			ts.Fatalf("half-open connection still open after %v", timeout)
		}
		fmt.Fprintf(ts.Stdout(), "%s", reply)
	}
}

// countLines is the number of lines of FILE (missing: none) matching re.
func countLines(path string, re *regexp.Regexp) int {
	b, _ := os.ReadFile(path)
	if len(b) == 0 {
		return 0
	}
	n := 0
	// Not the empty string after the last newline: '^' would count it.
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if re.MatchString(line) {
			n++
		}
	}
	return n
}

func compile(ts *testscript.TestScript, expr string) *regexp.Regexp {
	re, err := regexp.Compile(expr)
	if err != nil {
		ts.Fatalf("bad regexp %q: %v", expr, err)
	}
	return re
}

// waitlog FILE N REGEXP [TIMEOUT]: wait until at least N lines of FILE
// (a daemon's logfile) match REGEXP.
// ! waitlog FILE N REGEXP TIMEOUT: fail as soon as N lines match; pass if
// fewer than N do for all of TIMEOUT (only where no later event can show
// that nothing happened, e.g. with the watch off).
func cmdWaitLog(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 3 || len(args) > 4 || (neg && len(args) != 4) {
		ts.Fatalf("usage: waitlog FILE N REGEXP [TIMEOUT] | ! waitlog FILE N REGEXP TIMEOUT")
	}
	path, n, re := ts.MkAbs(args[0]), natoi(ts, args[1]), compile(ts, args[2])
	timeout := timeoutArg(ts, args, 3)
	got := 0
	ok, _ := testhelper.Wait(timeout, func() (bool, string) {
		got = countLines(path, re)
		return got >= n, ""
	})
	switch {
	case neg && ok:
		ts.Fatalf("%s: %d lines match %q, want fewer than %d", args[0], got, args[2], n)
	case !neg && !ok:
		ts.Fatalf("%s: %d lines match %q after %v, want %d", args[0], got, args[2], timeout, n)
	}
}

// countlog FILE REGEXP MIN MAX: between MIN and MAX lines (inclusive) of
// FILE match REGEXP.
func cmdCountLog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: countlog FILE REGEXP MIN MAX")
	}
	n := countLines(ts.MkAbs(args[0]), compile(ts, args[1]))
	lo, hi := natoi(ts, args[2]), natoi(ts, args[3])
	ts.Logf("%s: %d lines match %q", args[0], n, args[1])
	if n < lo || n > hi {
		ts.Fatalf("%s: %d lines match %q, want %d to %d", args[0], n, args[1], lo, hi)
	}
}

// waitreloaderr REGEXP [TIMEOUT]: wait until the daemon's last config
// reload error (status) matches REGEXP; '^$' waits until there is none.
func cmdWaitReloadErr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitreloaderr REGEXP [TIMEOUT]")
	}
	re := compile(ts, args[0])
	st := getState(ts)
	ok, desc := testhelper.Wait(timeoutArg(ts, args, 1), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		s, err := st.client().Status(ctx, nil)
		if err != nil {
			return false, err.Error()
		}
		return re.MatchString(s.LastReloadError), fmt.Sprintf("last_reload_error=%q", s.LastReloadError)
	})
	if !ok {
		ts.Fatalf("last reload error never matched %q; last: %s", args[0], desc)
	}
	ts.Logf("%s", desc)
}

// nowatcher NAME [TIMEOUT]: wait until NAME is no longer in the daemon's
// watcher list.
func cmdNoWatcher(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: nowatcher NAME [TIMEOUT]")
	}
	st := getState(ts)
	ok, desc := testhelper.Wait(timeoutArg(ts, args, 1), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		l, err := st.client().List(ctx)
		if err != nil {
			return false, err.Error()
		}
		return !slices.Contains(l, args[0]), strings.Join(l, " ")
	})
	if !ok {
		ts.Fatalf("watcher %s still listed; last: %s", args[0], desc)
	}
}

// burstGap is the pause between two writes of burst: 50 writes span
// longer than the reload debounce, so only a debounce that restarts on
// every event keeps the number of reloads low.
const burstGap = 5 * time.Millisecond

// burst DEST N FINAL [OTHER...]: write DEST in place (same file, no
// rename, like an editor without rename) N times, burstGap apart,
// cycling through the contents of the OTHER files; the N-th and last
// write is FINAL's content. Each write puts the new bytes over the old,
// then cuts the file to their length: a reload that comes in the middle
// of a write (a loaded host can stop this test between two system calls
// for longer than the debounce) reads the old version or the new one,
// never the empty file of truncate-then-write, which it would rightly
// apply (removing the watcher). Keep the versions the same length: a
// longer old one shows its tail until the cut.
func cmdBurst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: burst DEST N FINAL [OTHER...]")
	}
	dest, n := ts.MkAbs(args[0]), atoi(ts, args[1])
	var versions [][]byte
	for _, f := range append(args[3:], args[2]) {
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		versions = append(versions, b)
	}
	k := len(versions)
	for i := 0; i < n; i++ {
		if i > 0 {
			time.Sleep(burstGap)
		}
		// The last write (i = n-1) is versions[k-1], FINAL.
		v := versions[((k-1-(n-1-i))%k+k)%k]
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE, 0o644)
		ts.Check(err)
		_, err = f.WriteAt(v, 0)
		if err == nil {
			err = f.Truncate(int64(len(v)))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		ts.Check(err)
	}
}
