//go:build linux

package main

// PID 1 / container tests of the real circled binary (issue 3): circled
// runs as PID 1 of a new PID namespace (`unshare --pid --fork
// --mount-proc`), or, for the subreaper tests, as a plain child of the
// test. Everything is observed from outside, through the host's /proc
// and the control socket. The watchers run internal/testhelper/sigtrap,
// a static helper built once into binDir.
//
// Every wait polls with a deadline; no test sleeps to "let it happen".

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

var (
	pid1SigtrapOnce sync.Once
	pid1SigtrapErr  error
	pid1NSOnce      sync.Once
	pid1NSSkip      string
)

// pid1Sigtrap builds the sigtrap helper (static) into binDir once.
func pid1Sigtrap(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "sigtrap")
	pid1SigtrapOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", path, "./internal/testhelper/sigtrap")
		cmd.Dir = filepath.Join("..", "..") // the module root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			pid1SigtrapErr = fmt.Errorf("building sigtrap: %v\n%s", err, out)
		}
	})
	if pid1SigtrapErr != nil {
		t.Fatal(pid1SigtrapErr)
	}
	return path
}

// pid1Skip skips with -short, and where no PID namespace can be created.
func pid1Skip(t *testing.T, needNS bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: PID 1 tests run real daemons; skipped with -short")
	}
	if !needNS {
		return
	}
	pid1NSOnce.Do(func() {
		if _, err := exec.LookPath("unshare"); err != nil {
			pid1NSSkip = "unshare (util-linux) is not in PATH: cannot make circled PID 1 of a new PID namespace"
			return
		}
		out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput()
		if err != nil {
			pid1NSSkip = fmt.Sprintf("cannot create a PID namespace here (`unshare --pid --fork --mount-proc true`: %v: %s)",
				err, strings.TrimSpace(string(out)))
		}
	})
	if pid1NSSkip != "" {
		t.Skip("SKIP: " + pid1NSSkip)
	}
}

// pid1Opts say how to start circled.
type pid1Opts struct {
	notPID1 bool     // run circled as a plain child (a subreaper), no unshare
	wrap    []string // sigtrap wrap flags (-ignore INT ...) for the whole command
	env     []string // added to circled's environment
	dir     string   // reuse this directory (config, socket) of an earlier daemon
	logName string   // circled's output file in dir (default circled.log)
}

// pid1Daemon is one circled under test.
type pid1Daemon struct {
	t       *testing.T
	dir     string // short temp dir: config, socket, marker files
	socket  string
	logPath string
	sigtrap string
	cmd     *exec.Cmd // unshare, or circled itself with notPID1
	pid     int       // circled's pid on the host
	ns      string    // circled's PID namespace ("pid:[4026532...]"); "" with notPID1
	done    chan struct{}
	ws      syscall.WaitStatus // of cmd, once done is closed
	endedAt time.Time

	mu    sync.Mutex
	track []int // host pids to kill if the test ends with them alive (notPID1)
}

// pid1Start writes the config (circledKeys go in [circled], after the
// socket; watchers follow; {sigtrap} and {dir} are replaced) and starts
// circled, as PID 1 of a new PID namespace unless opts.notPID1. It returns
// once the control socket answers.
func pid1Start(t *testing.T, opts pid1Opts, circledKeys, watchers string) *pid1Daemon {
	t.Helper()
	pid1Skip(t, !opts.notPID1)
	d := &pid1Daemon{t: t, sigtrap: pid1Sigtrap(t), done: make(chan struct{})}
	// t.TempDir may be too long for a unix socket path (< 108 bytes).
	dir := opts.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "p1"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	logName := opts.logName
	if logName == "" {
		logName = "circled.log"
	}
	d.dir, d.socket, d.logPath = dir, filepath.Join(dir, "c.sock"), filepath.Join(dir, logName)
	r := strings.NewReplacer("{sigtrap}", d.sigtrap, "{dir}", dir)
	cfg := "[circled]\nsocket = " + d.socket + "\nwatch_config = false\n" + r.Replace(circledKeys) + "\n" + r.Replace(watchers)
	cfgPath := filepath.Join(dir, "circled.ini")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	circled := filepath.Join(binDir, "circled")
	argv := []string{circled, "-c", cfgPath}
	if !opts.notPID1 {
		argv = append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}, argv...)
	}
	if opts.wrap != nil {
		argv = append(append(append([]string{d.sigtrap, "wrap"}, opts.wrap...), "--"), argv...)
	}
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// A -race binary sleeps 1s before exiting unless told otherwise.
	d.cmd.Env = append(append(os.Environ(), "GORACE=atexit_sleep_ms=10"), opts.env...)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.cmd.Wait()
		d.endedAt = time.Now()
		d.ws = d.cmd.ProcessState.Sys().(syscall.WaitStatus)
		close(d.done)
	}()
	t.Cleanup(d.cleanup)

	if opts.notPID1 {
		d.pid = d.cmd.Process.Pid
	} else {
		// unshare forks, and its child execs circled: find it.
		ok, desc := testhelper.Wait(time.Minute, func() (bool, string) {
			for _, c := range pid1Children(d.cmd.Process.Pid) {
				if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", c)); exe == circled {
					d.pid = c
					return true, ""
				}
			}
			return d.ended(), "no circled child of unshare yet"
		})
		if !ok || d.pid == 0 {
			t.Fatalf("circled never started under unshare (%s); log:\n%s", desc, d.log())
		}
		d.ns, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", d.pid))
		if nspid := pid1ReadProc(d.pid).nspid; nspid != 1 {
			t.Fatalf("circled (host pid %d) is pid %d in its namespace, want 1", d.pid, nspid)
		}
	}
	// Deadlines here and in status are for a daemon that does not
	// answer at all, not latency targets: a loaded host may take seconds.
	ok, desc := testhelper.Wait(time.Minute, func() (bool, string) {
		if d.ended() {
			return true, "ended"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := ctl.NewClient(d.socket).Version(ctx)
		return err == nil, fmt.Sprint(err)
	})
	if !ok || d.ended() {
		t.Fatalf("circled never answered on %s (%s); log:\n%s", d.socket, desc, d.log())
	}
	return d
}

func (d *pid1Daemon) ended() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// log is circled's output (its last 16 KiB).
func (d *pid1Daemon) log() string {
	b, _ := os.ReadFile(d.logPath)
	if len(b) > 16<<10 {
		b = append([]byte("...\n"), b[len(b)-16<<10:]...)
	}
	return string(b)
}

// cleanup kills whatever a failed test left: circled (as PID 1 the
// kernel then kills its whole namespace), unshare, and tracked pids.
func (d *pid1Daemon) cleanup() {
	if !d.ended() {
		d.t.Logf("cleanup: killing circled (pid %d)", d.pid)
		if d.pid > 0 {
			syscall.Kill(d.pid, syscall.SIGKILL)
		}
		d.cmd.Process.Kill()
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			d.t.Errorf("cleanup: %s did not end after SIGKILL", d.cmd.Path)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, pid := range d.track {
		if pid1Alive(pid) {
			d.t.Logf("cleanup: killing leftover pid %d", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if d.t.Failed() {
		d.t.Logf("circled output:\n%s", d.log())
	}
}

func (d *pid1Daemon) trackPid(pid int) {
	d.mu.Lock()
	d.track = append(d.track, pid)
	d.mu.Unlock()
}

// signal sends sig to circled's host pid (PID 1 of the namespace).
func (d *pid1Daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := syscall.Kill(d.pid, sig); err != nil {
		d.t.Fatalf("kill -%d %d: %v", sig, d.pid, err)
	}
}

// wait waits up to timeout for circled (or unshare) to end and returns
// its exit code (-1 when a signal ended it) and when it ended.
func (d *pid1Daemon) wait(timeout time.Duration) (int, time.Time) {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.t.Fatalf("circled still running after %v; processes: %s\nlog:\n%s", timeout, pid1Describe(d.nsProcs()), d.log())
	}
	if d.ws.Signaled() {
		d.t.Logf("%s ended by signal %v", filepath.Base(d.cmd.Path), d.ws.Signal())
		return -1, d.endedAt
	}
	return d.ws.ExitStatus(), d.endedAt
}

// status asks circled for the status of watcher name.
func (d *pid1Daemon) status(name string) (ctl.WatcherStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := ctl.NewClient(d.socket).Status(ctx, []string{name})
	if err != nil {
		return ctl.WatcherStatus{}, err
	}
	for _, w := range st.Watchers {
		if w.Name == name {
			return w, nil
		}
	}
	return ctl.WatcherStatus{}, fmt.Errorf("watcher %s not in status", name)
}

// circlectl runs circlectl on this daemon's socket and returns its stdout.
func (d *pid1Daemon) circlectl(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(binDir, "circlectl"), append([]string{"--socket", d.socket}, args...)...)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("circlectl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, err
}

// path is a file in the daemon's directory.
func (d *pid1Daemon) path(name string) string { return filepath.Join(d.dir, name) }

// waitLines waits until file name holds at least n lines containing sub.
func (d *pid1Daemon) waitLines(name, sub string, n int, timeout time.Duration) []string {
	d.t.Helper()
	var got []string
	ok, _ := testhelper.Wait(timeout, func() (bool, string) {
		got = pid1Grep(d.path(name), sub)
		return len(got) >= n, ""
	})
	if !ok {
		b, _ := os.ReadFile(d.path(name))
		d.t.Fatalf("%s: want %d lines with %q within %v; file:\n%s\ncircled log:\n%s", name, n, sub, timeout, b, d.log())
	}
	return got
}

// nsProcs lists the processes of circled's PID namespace, circled
// included. A zombie has no namespace link any more: it counts when its
// parent is in the namespace.
func (d *pid1Daemon) nsProcs() []pid1Proc {
	if d.ns == "" {
		return nil
	}
	var out []pid1Proc
	var zombies []pid1Proc
	in := map[int]bool{}
	for _, p := range pid1AllProcs() {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p.pid)); err == nil {
			if ns == d.ns {
				out = append(out, p)
				in[p.pid] = true
			}
			continue
		}
		if p.state == 'Z' || p.state == 'X' {
			zombies = append(zombies, p)
		}
	}
	for _, z := range zombies {
		if in[z.ppid] || z.ppid == d.pid {
			out = append(out, z)
		}
	}
	return out
}

// reparented adds to seen the orphans (sigtrap sleep) whose parent is
// circled now, and returns the namespace's processes.
func (d *pid1Daemon) reparented(seen map[int]bool) []pid1Proc {
	ps := d.nsProcs()
	for _, p := range ps {
		if p.ppid == d.pid && strings.Contains(p.cmdline, " sleep ") {
			seen[p.pid] = true
		}
	}
	return ps
}

// genPID is the pid of watcher name's only process, which must be running
// and never restarted.
func (d *pid1Daemon) genPID(t *testing.T, name string) int {
	t.Helper()
	// The control socket answers before the watchers are started: wait
	// for the process to be running.
	var w ctl.WatcherStatus
	testhelper.Wait(10*time.Second, func() (bool, string) {
		var err error
		w, err = d.status(name)
		return err == nil && len(w.Processes) == 1 && w.Processes[0].State == "running", fmt.Sprint(err)
	})
	if len(w.Processes) != 1 || w.Processes[0].State != "running" || w.Processes[0].Restarts != 0 {
		t.Fatalf("watcher %s: want one running process, never restarted: %+v", name, w)
	}
	return w.Processes[0].PID
}

// findNS waits until exactly n processes of the namespace have sub in
// their command line, and returns them.
func (d *pid1Daemon) findNS(sub string, n int) []pid1Proc {
	d.t.Helper()
	var found []pid1Proc
	ok, _ := testhelper.Wait(10*time.Second, func() (bool, string) {
		found = found[:0]
		for _, p := range d.nsProcs() {
			if strings.Contains(p.cmdline, sub) && p.state != 'Z' {
				found = append(found, p)
			}
		}
		return len(found) == n, ""
	})
	if !ok {
		d.t.Fatalf("want %d processes running %q in the namespace, found %s", n, sub, pid1Describe(found))
	}
	return found
}

// pid1Proc is one process as the host's /proc shows it.
type pid1Proc struct {
	pid, ppid, pgid, sid int
	nspid                int // pid in its own (innermost) namespace
	state                byte
	cmdline              string
}

func pid1ReadProc(pid int) pid1Proc {
	p := pid1Proc{pid: pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return pid1Proc{}
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return pid1Proc{}
	}
	// After "(comm)": state ppid pgrp session ...
	f := strings.Fields(s[i+1:])
	if len(f) < 4 {
		return pid1Proc{}
	}
	p.state = f[0][0]
	p.ppid, _ = strconv.Atoi(f[1])
	p.pgid, _ = strconv.Atoi(f[2])
	p.sid, _ = strconv.Atoi(f[3])
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
				if ids := strings.Fields(v); len(ids) > 0 {
					p.nspid, _ = strconv.Atoi(ids[len(ids)-1])
				}
			}
		}
	}
	if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		p.cmdline = strings.Join(strings.Split(strings.TrimRight(string(c), "\x00"), "\x00"), " ")
	}
	return p
}

func pid1AllProcs() []pid1Proc {
	ents, _ := os.ReadDir("/proc")
	var out []pid1Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p := pid1ReadProc(pid); p.pid != 0 {
			out = append(out, p)
		}
	}
	return out
}

func pid1Describe(ps []pid1Proc) string {
	if len(ps) == 0 {
		return "(none)"
	}
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\n  pid=%d nspid=%d ppid=%d pgid=%d sid=%d state=%c %s", p.pid, p.nspid, p.ppid, p.pgid, p.sid, p.state, p.cmdline)
	}
	return b.String()
}

// pid1Children lists pid's children (/proc/PID/task/*/children).
func pid1Children(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// pid1Alive: pid exists and is not a zombie.
func pid1Alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	p := pid1ReadProc(pid)
	return p.pid != 0 && p.state != 'Z' && p.state != 'X'
}

// pid1Grep returns the lines of file path that contain sub.
func pid1Grep(path, sub string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// pid1Field returns the integer after "key=" in line, or 0.
func pid1Field(line, key string) int {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// 1. A watcher spawns 50 background orphans and exits: once the orphans
// have exited no process of the namespace is a zombie (circled reaps
// them), and every orphan is gone.
func TestPID1ReapsOrphans(t *testing.T) {
	// With a cgroup per process the orphans are the generator's processes
	// and get TERM when it exits (issue 12 §2): contain by process group
	// only, so that they live on and re-parent to circled.
	d := pid1Start(t, pid1Opts{env: []string{"CIRCLED_NO_CGROUPS=1"}}, "", `
[watcher:gen]
cmd = {sigtrap} orphans 50 5s {dir}/orphans
respawn = false
`)
	line := d.waitLines("orphans", "orphans ", 1, 10*time.Second)[0]
	t0 := time.Now()
	if n := len(strings.Fields(line)) - 1; n != 50 {
		t.Fatalf("generator reports %d orphans, want 50: %s", n, line)
	}
	// The orphans live up to 5 s (not a fraction of one: a loaded host
	// may take that long before the first sample, which must still find
	// some of them re-parented); a zombie circled failed to reap would
	// stay for good, so the wait is long.
	reparented := map[int]bool{}
	ok, _ := testhelper.Wait(30*time.Second, func() (bool, string) {
		ps := d.reparented(reparented)
		return len(ps) == 1 && ps[0].pid == d.pid, ""
	})
	if !ok {
		t.Fatalf("30s after the generator exited (its orphans live at most 5s), the namespace still holds (zombies: state=Z):%s", pid1Describe(d.nsProcs()))
	}
	t.Logf("namespace empty but for circled %v after the generator's exit; saw %d orphans re-parented to circled",
		time.Since(t0).Round(time.Millisecond), len(reparented))
	if len(reparented) == 0 {
		t.Errorf("never saw an orphan re-parented to circled (pid %d): the test proves nothing", d.pid)
	}
	w, err := d.status("gen")
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Processes) != 1 || w.Processes[0].LastExit != (ctl.Exit{}) {
		t.Errorf("generator's own exit is not recorded as code 0: %+v", w.Processes)
	}
	d.signal(syscall.SIGTERM)
	if code, _ := d.wait(10 * time.Second); code != 0 {
		t.Errorf("circled exited %d after SIGTERM, want 0", code)
	}
}

// 2. No stolen statuses: 300 processes exit 7 while orphans keep
// re-parenting to circled; every recorded exit code is 7.
func TestPID1NoStolenStatuses(t *testing.T) {
	d := pid1Start(t, pid1Opts{}, "", `
[watcher:seven]
cmd = /bin/sh -c 'exit 7'
numprocesses = 300
respawn = false
autostart = false

[watcher:gen]
cmd = {sigtrap} churn 10 100ms 5ms
`)
	// Start the 300 once orphans are re-parenting to circled; afterwards,
	// see that the same generator process still makes new ones: it ran
	// throughout.
	genBefore := d.genPID(t, "gen")
	orphans := map[int]bool{}
	if ok, _ := testhelper.Wait(10*time.Second, func() (bool, string) { d.reparented(orphans); return len(orphans) > 0, "" }); !ok {
		// Sampling /proc can miss short-lived orphans on a loaded machine;
		// the statuses below are checked either way.
		t.Logf("no re-parented orphan sampled in 10 s (machine loaded?):%s", pid1Describe(d.nsProcs()))
	}
	// (--no-wait: a start that waits fails, each process exits 7.)
	if out, err := d.circlectl("start", "--no-wait", "seven"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	var st ctl.Status
	var pending int
	ok, _ := testhelper.Wait(60*time.Second, func() (bool, string) {
		out, err := d.circlectl("status", "--json", "seven")
		if err != nil {
			return false, err.Error()
		}
		st = ctl.Status{}
		if err := json.Unmarshal(out, &st); err != nil || len(st.Watchers) != 1 {
			return false, fmt.Sprintf("bad status %q: %v", out, err)
		}
		pending = 0
		for _, p := range st.Watchers[0].Processes {
			if p.State == "starting" || p.State == "running" || p.State == "stopping" {
				pending++
			}
		}
		return len(st.Watchers[0].Processes) == 300 && pending == 0, ""
	})
	if !ok {
		t.Fatalf("the 300 processes never all ended (%d of %d still pending)", pending, len(st.Watchers[0].Processes))
	}
	bad := 0
	for _, p := range st.Watchers[0].Processes {
		if p.LastExit.Code != 7 || p.LastExit.Signal != "" {
			bad++
			if bad <= 10 {
				t.Errorf("process wid=%d pid=%d state=%s: last_exit %+v, want code 7", p.WID, p.PID, p.State, p.LastExit)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of 300 exit statuses lost or wrong", bad)
	}
	after := map[int]bool{}
	testhelper.Wait(5*time.Second, func() (bool, string) { d.reparented(after); return len(after) > 0, "" })
	if genAfter := d.genPID(t, "gen"); genAfter != genBefore {
		t.Errorf("the orphan generator did not run throughout: pid %d before, %d after", genBefore, genAfter)
	}
	t.Logf("%d orphans sampled re-parenting after the 300 (sampling /proc can miss them on a loaded machine)", len(after))
	d.signal(syscall.SIGTERM)
	if code, _ := d.wait(15 * time.Second); code != 0 {
		t.Errorf("circled exited %d after SIGTERM, want 0", code)
	}
}

// 3. kill -TERM to PID 1: watchers that trap TERM finish their graceful
// work; circled exits 0 as soon as they are done, well before the
// graceful_timeout (30 s: long enough that neither the children's work
// nor circled's exit on a loaded host comes near it, so that exiting
// before it means circled did not wait the grace out).
func TestPID1TermGraceful(t *testing.T) {
	const grace = 30 * time.Second
	d := pid1Start(t, pid1Opts{}, "graceful_timeout = 30", `
[watcher:trap]
cmd = {sigtrap} trap {dir}/trap.$(circle.wid) 500ms
numprocesses = 3
graceful_timeout = 30

[watcher:early]
cmd = {sigtrap} trap {dir}/early 200ms
priority = 5
graceful_timeout = 30
`)
	files := []string{"trap.1", "trap.2", "trap.3", "early"}
	for _, f := range files {
		d.waitLines(f, "ready trap", 1, 10*time.Second)
	}
	t0 := time.Now()
	d.signal(syscall.SIGTERM)
	code, end := d.wait(grace + 30*time.Second)
	took := end.Sub(t0)
	t.Logf("circled exited %d %v after SIGTERM", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("unshare reports exit status %d, want 0", code)
	}
	if took >= grace {
		t.Errorf("circled took %v to exit, want less than graceful_timeout = %v (its children were done after 0.5s)", took, grace)
	}
	for _, f := range files {
		for _, want := range []string{"signal SIGTERM", "graceful done"} {
			if got := pid1Grep(d.path(f), want); len(got) != 1 {
				b, _ := os.ReadFile(d.path(f))
				t.Errorf("%s: want one %q line; file:\n%s", f, want, b)
			}
		}
	}
	if left := d.nsProcs(); len(left) > 0 {
		t.Errorf("processes left in the namespace:%s", pid1Describe(left))
	}
}

// 4. A child ignoring TERM, graceful_timeout = 2: SIGKILL after the 2 s
// (not before), and no process of its group survives; both for `circlectl
// stop` and for SIGTERM to PID 1 (with a long global grace, 60 s, so that
// the final sweep cannot be what kills them, and an upper bound that
// tells the watcher's grace from the global one without being a latency
// target on a loaded host).
func TestPID1IgnoreTermKilledAfterGrace(t *testing.T) {
	const globalGrace = 60 * time.Second
	d := pid1Start(t, pid1Opts{}, "graceful_timeout = 60", `
[watcher:ign1]
cmd = {sigtrap} ignore {dir}/ign1 2
graceful_timeout = 2

[watcher:ign2]
cmd = {sigtrap} ignore {dir}/ign2 2
graceful_timeout = 2
`)
	group := func(name string) []pid1Proc {
		d.waitLines(name, "ready ignore", 3, 10*time.Second)
		ps := d.findNS(d.path(name), 3)
		for _, p := range ps {
			if p.pgid != ps[0].pgid {
				t.Fatalf("%s: processes not in one group:%s", name, pid1Describe(ps))
			}
		}
		return ps
	}
	// gone waits until no process of the group is left in the namespace.
	gone := func(name string, ps []pid1Proc, t0 time.Time) time.Duration {
		pgid := ps[0].pgid
		ok, _ := testhelper.Wait(globalGrace, func() (bool, string) {
			for _, p := range d.nsProcs() {
				if p.pgid == pgid && p.state != 'Z' {
					return false, ""
				}
			}
			return true, ""
		})
		took := time.Since(t0)
		if !ok {
			t.Fatalf("%s: processes of group %d still alive %v after the stop:%s", name, pgid, took, pid1Describe(d.nsProcs()))
		}
		t.Logf("%s: group %d gone %v after the stop", name, pgid, took.Round(time.Millisecond))
		// Not before the watcher's 2 s grace; and by its own grace, not the
		// daemon-wide 60 s (the upper bound is that distinction, wide enough
		// for a loaded 2-core machine, not a latency target).
		if took < 1500*time.Millisecond || took >= globalGrace/2 {
			t.Errorf("%s: group killed %v after the stop, want after the watcher's 2s grace, well before the global %v", name, took, globalGrace)
		}
		return took
	}

	g1, g2 := group("ign1"), group("ign2")
	stop := exec.Command(filepath.Join(binDir, "circlectl"), "--socket", d.socket, "stop", "ign1")
	stop.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
	var stopOut bytes.Buffer
	stop.Stdout, stop.Stderr = &stopOut, &stopOut
	t0 := time.Now()
	if err := stop.Start(); err != nil {
		t.Fatal(err)
	}
	gone("ign1", g1, t0)
	if err := stop.Wait(); err != nil {
		t.Errorf("circlectl stop ign1: %v: %s", err, stopOut.Bytes())
	}
	if w, err := d.status("ign1"); err != nil {
		t.Error(err)
	} else {
		for _, p := range w.Processes {
			if p.LastExit.Signal != "KILL" {
				t.Errorf("ign1 process %d: last_exit %+v, want signal KILL", p.WID, p.LastExit)
			}
		}
	}

	t0 = time.Now()
	d.signal(syscall.SIGTERM)
	gone("ign2", g2, t0)
	code, end := d.wait(globalGrace)
	if code != 0 {
		t.Errorf("circled exited %d, want 0", code)
	}
	if took := end.Sub(t0); took >= globalGrace/2 {
		t.Errorf("circled exited %v after SIGTERM, want about 2s (the watcher's graceful_timeout), well before the global %v", took, globalGrace)
	}
}

// 5. A descendant that escaped with setsid and ignores TERM is gone after
// shutdown. As PID 1 the kernel would kill it anyway when circled exits,
// so check that it is gone before circled removes its control socket
// (which it does after its final sweep).
func TestPID1SetsidEscapeKilled(t *testing.T) {
	d := pid1Start(t, pid1Opts{}, "graceful_timeout = 1", `
[watcher:esc]
cmd = {sigtrap} setsid {dir}/esc
graceful_timeout = 2
`)
	d.waitLines("esc", "ready ignore", 1, 10*time.Second)
	nspid := pid1Field(d.waitLines("esc", "escaped pid=", 1, 10*time.Second)[0], "pid")
	var esc, leader pid1Proc
	for _, p := range d.findNS(d.path("esc"), 2) {
		if p.nspid == nspid {
			esc = p
		} else {
			leader = p
		}
	}
	if esc.pid == 0 || esc.sid != esc.pid || esc.pgid == leader.pgid {
		t.Fatalf("no escaped process (ns pid %d) in its own session:%s", nspid, pid1Describe([]pid1Proc{esc, leader}))
	}
	t0 := time.Now()
	d.signal(syscall.SIGTERM)
	ok, desc := testhelper.Wait(pid1EscapeBound, func() (bool, string) {
		_, err := os.Stat(d.socket)
		sockGone := errors.Is(err, os.ErrNotExist)
		if pid1Alive(esc.pid) {
			if sockGone {
				return true, "circled removed its socket (final sweep over) while the escaped process still ran"
			}
			return false, "escaped process still alive"
		}
		return true, ""
	})
	if !ok || desc != "" {
		t.Fatalf("escaped process %d: %s", esc.pid, desc)
	}
	t.Logf("escaped process gone %v after SIGTERM", time.Since(t0).Round(time.Millisecond))
	code, end := d.wait(pid1EscapeBound)
	if code != 0 {
		t.Errorf("circled exited %d, want 0", code)
	}
	if took := end.Sub(t0); took >= pid1EscapeBound {
		t.Errorf("circled took %v to exit after SIGTERM, want about the watcher's graceful_timeout + [circled]'s = 3s, well under %v (with a cgroup per process the watcher's stop reaches the escaped process; without, the final sweep does, after [circled] graceful_timeout = 1s)", took, pid1EscapeBound)
	}
}

// pid1EscapeBound bounds circled's exit after SIGTERM with an escaped
// TERM-ignoring process, graceful_timeout = 2 (the watcher) and 1
// ([circled]): about 3 s are expected; the bound tells that from the
// 30 s default grace or a sweep that never kills, without being a
// latency target a loaded host can miss.
const pid1EscapeBound = 20 * time.Second

// 5b. The same as a subreaper (not PID 1): here nothing else would kill
// the escaped process.
func TestPID1SubreaperSetsidEscapeKilled(t *testing.T) {
	d := pid1Start(t, pid1Opts{notPID1: true}, "graceful_timeout = 1", `
[watcher:esc]
cmd = {sigtrap} setsid {dir}/esc
graceful_timeout = 2
`)
	d.waitLines("esc", "ready ignore", 1, 10*time.Second)
	esc := pid1Field(d.waitLines("esc", "escaped pid=", 1, 10*time.Second)[0], "pid")
	d.trackPid(esc)
	if p := pid1ReadProc(esc); p.sid != esc {
		t.Fatalf("process %d did not escape into its own session:%s", esc, pid1Describe([]pid1Proc{p}))
	}
	t0 := time.Now()
	d.signal(syscall.SIGTERM)
	code, end := d.wait(pid1EscapeBound)
	took := end.Sub(t0)
	t.Logf("circled exited %d %v after SIGTERM", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("circled exited %d, want 0", code)
	}
	if took >= pid1EscapeBound {
		t.Errorf("circled took %v to exit after SIGTERM, want about the watcher's graceful_timeout + [circled]'s = 3s, well under %v (with a cgroup per process the watcher's stop reaches the escaped process; without, the final sweep does, after [circled] graceful_timeout = 1s)", took, pid1EscapeBound)
	}
	if pid1Alive(esc) {
		t.Errorf("escaped process %d survived circled's shutdown:%s", esc, pid1Describe([]pid1Proc{pid1ReadProc(esc)}))
	}
}

// 6. A critical watcher that ends for good: circled exits with its code,
// or 128+N when signal N killed it; the other watchers stop gracefully.
func TestPID1CriticalExitCode(t *testing.T) {
	t.Run("exit3", func(t *testing.T) {
		// crit exits once other has its TERM handler (its "ready trap"
		// line): a fixed delay could end before a loaded host had run
		// other that far, and the TERM of the shutdown would then kill it
		// without its graceful work.
		d := pid1Start(t, pid1Opts{}, "graceful_timeout = 3", `
[watcher:crit]
cmd = /bin/sh -c 'until grep -qs "ready trap" {dir}/other; do sleep 0.05; done; exec {sigtrap} exit 3 300ms'
critical = true
respawn = false

[watcher:other]
cmd = {sigtrap} trap {dir}/other 100ms
`)
		code, _ := d.wait(10 * time.Second)
		if code != 3 {
			t.Errorf("circled exited %d, want 3 (the critical watcher's code)", code)
		}
		if got := pid1Grep(d.path("other"), "graceful done"); len(got) != 1 {
			t.Errorf("the other watcher was not stopped gracefully: %q", got)
		}
	})
	t.Run("sigkill137", func(t *testing.T) {
		d := pid1Start(t, pid1Opts{}, "graceful_timeout = 3", `
[watcher:crit]
cmd = {sigtrap} trap {dir}/crit
critical = true
respawn = false

[watcher:other]
cmd = {sigtrap} trap {dir}/other 100ms
`)
		d.waitLines("crit", "ready trap", 1, 10*time.Second)
		d.waitLines("other", "ready trap", 1, 10*time.Second)
		p := d.findNS(d.path("crit"), 1)[0]
		if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		code, _ := d.wait(10 * time.Second)
		if code != 137 {
			t.Errorf("circled exited %d, want 137 (128+SIGKILL)", code)
		}
		if got := pid1Grep(d.path("other"), "graceful done"); len(got) != 1 {
			t.Errorf("the other watcher was not stopped gracefully: %q", got)
		}
	})
}

// 7. SIGUSR2 and SIGWINCH sent to PID 1 reach every process exactly once;
// SIGURG and SIGCHLD never do, under 10 s of load (orphans re-parenting
// all the time, and a loop of circlectl status calls).
func TestPID1SignalForwarding(t *testing.T) {
	const load = 10 * time.Second
	d := pid1Start(t, pid1Opts{}, "graceful_timeout = 3", `
[watcher:log]
cmd = {sigtrap} log {dir}/log.$(circle.wid)
numprocesses = 2

[watcher:churn]
cmd = {sigtrap} churn 5 300ms 10ms
`)
	files := []string{"log.1", "log.2"}
	for _, f := range files {
		d.waitLines(f, "ready trap", 1, 10*time.Second)
	}
	t0 := time.Now()
	stopLoad := make(chan struct{})
	var calls, failures atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopLoad:
				return
			default:
			}
			if _, err := d.circlectl("status"); err != nil {
				failures.Add(1)
			}
			calls.Add(1)
		}
	}()
	defer func() {
		select {
		case <-stopLoad:
		default:
			close(stopLoad)
		}
		wg.Wait()
	}()

	// Signal once the load is under way (a status call has returned),
	// then keep it up to the end.
	if ok, _ := testhelper.Wait(30*time.Second, func() (bool, string) { return calls.Load() > 0, "" }); !ok {
		t.Fatalf("no circlectl status call returned in 30s")
	}
	d.signal(syscall.SIGUSR2)
	d.signal(syscall.SIGWINCH)
	for _, f := range files {
		d.waitLines(f, "signal SIGUSR2", 1, 30*time.Second)
		d.waitLines(f, "signal SIGWINCH", 1, 30*time.Second)
	}
	// Until the end of the load, watch the orphans re-parent (this also
	// paces the loop: no fixed sleep decides anything).
	orphans := map[int]bool{}
	testhelper.Wait(time.Until(t0.Add(load)), func() (bool, string) {
		d.reparented(orphans)
		return false, ""
	})
	close(stopLoad)
	wg.Wait()
	t.Logf("%d circlectl status calls (%d failed) in %v", calls.Load(), failures.Load(), time.Since(t0).Round(time.Millisecond))
	if failures.Load() > 0 {
		t.Errorf("%d circlectl status calls failed under load", failures.Load())
	}
	if w, err := d.status("churn"); err != nil || w.State != "active" {
		t.Errorf("the orphan generator did not run throughout: %+v %v", w, err)
	}
	t.Logf("saw %d orphans re-parented to circled during the load", len(orphans))
	for _, f := range files {
		b, _ := os.ReadFile(d.path(f))
		got := map[string]int{}
		for _, l := range strings.Split(string(b), "\n") {
			if sig, ok := strings.CutPrefix(l, "signal "); ok {
				got[sig]++
			}
		}
		want := map[string]int{"SIGUSR2": 1, "SIGWINCH": 1}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: signals received %v, want %v (SIGUSR2 and SIGWINCH once each, never SIGURG or SIGCHLD)", f, got, want)
		}
	}
	d.signal(syscall.SIGTERM)
	if code, _ := d.wait(10 * time.Second); code != 0 {
		t.Errorf("circled exited %d after SIGTERM, want 0", code)
	}
}

// 8. A child's SigBlk and SigIgn are a normal shell's (nothing blocked,
// nothing ignored) even when circled was started with SIGINT (and more)
// ignored and signals blocked.
func TestPID1ChildDispositions(t *testing.T) {
	const zero = "0000000000000000"
	d := pid1Start(t, pid1Opts{wrap: []string{"-ignore", "INT,QUIT,HUP,PIPE,USR1,TSTP,TTOU", "-block", "INT,TERM,USR2,CHLD,WINCH"}}, "", `
[watcher:shell]
cmd = /bin/sh -c 'exec grep -E "^Sig(Blk|Ign)" /proc/self/status >{dir}/shell.status'
respawn = false

[watcher:helper]
cmd = {sigtrap} status {dir}/helper.status
`)
	// The premise: what circled was started with (unshare, which the
	// wrapper exec'd, keeps it).
	premise := pid1SigLines(t, fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	t.Logf("circled started under %v", premise)
	ign, _ := strconv.ParseUint(premise["SigIgn"], 16, 64)
	blk, _ := strconv.ParseUint(premise["SigBlk"], 16, 64)
	if ign&(1<<(syscall.SIGINT-1)) == 0 || blk&(1<<(syscall.SIGTERM-1)) == 0 {
		t.Fatalf("the wrapper did not ignore SIGINT and block SIGTERM: %v", premise)
	}
	base, err := exec.Command("/bin/sh", "-c", `exec grep -E "^Sig(Blk|Ign)" /proc/self/status`).Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a shell the test starts: %q", base)

	d.waitLines("shell.status", "SigIgn", 1, 10*time.Second)
	d.waitLines("helper.status", "ready status", 1, 10*time.Second)
	for _, f := range []string{"shell.status", "helper.status"} {
		got := pid1SigLines(t, d.path(f))
		if got["SigBlk"] != zero || got["SigIgn"] != zero {
			t.Errorf("%s: child has SigBlk=%s SigIgn=%s, want a normal shell's: %s and %s", f, got["SigBlk"], got["SigIgn"], zero, zero)
		}
	}
	d.signal(syscall.SIGTERM)
	if code, _ := d.wait(10 * time.Second); code != 0 {
		t.Errorf("circled exited %d after SIGTERM, want 0", code)
	}
}

// pid1SigLines reads the SigBlk and SigIgn values of a /proc status file
// (or a copy of its lines).
func pid1SigLines(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && (k == "SigBlk" || k == "SigIgn") {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// 9. Not PID 1 (a child subreaper): a double-forked grandchild re-parents
// to circled and is reaped when it exits; no zombie has circled as parent.
// The grandchild lives until the test has seen it re-parented and kills
// it (a fixed life, 1 s, could end before a loaded host let the test look).
func TestPID1NotPID1ReapsDoubleFork(t *testing.T) {
	d := pid1Start(t, pid1Opts{notPID1: true}, "graceful_timeout = 2", `
[watcher:df]
cmd = {sigtrap} doublefork {dir}/df 1h
`)
	gc := pid1Field(d.waitLines("df", "grandchild pid=", 1, 10*time.Second)[0], "pid")
	d.trackPid(gc)
	ok, _ := testhelper.Wait(30*time.Second, func() (bool, string) {
		p := pid1ReadProc(gc)
		return p.ppid == d.pid || p.pid == 0, ""
	})
	if p := pid1ReadProc(gc); !ok || p.ppid != d.pid {
		t.Fatalf("grandchild %d did not re-parent to circled (pid %d):%s", gc, d.pid, pid1Describe([]pid1Proc{p}))
	}
	// It exits now; then circled must reap it (a zombie with circled as
	// parent stays for good).
	if err := syscall.Kill(gc, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ok, _ = testhelper.Wait(30*time.Second, func() (bool, string) {
		p := pid1ReadProc(gc)
		return p.pid == 0 || p.ppid != d.pid, ""
	})
	if !ok {
		t.Fatalf("grandchild %d not reaped:%s", gc, pid1Describe([]pid1Proc{pid1ReadProc(gc)}))
	}
	var zombies []pid1Proc
	for _, p := range pid1AllProcs() {
		if p.ppid == d.pid && p.state == 'Z' {
			zombies = append(zombies, p)
		}
	}
	if len(zombies) > 0 {
		t.Errorf("zombies whose parent is circled:%s", pid1Describe(zombies))
	}
	d.signal(syscall.SIGTERM)
	if code, _ := d.wait(10 * time.Second); code != 0 {
		t.Errorf("circled exited %d after SIGTERM, want 0", code)
	}
}
