//go:build linux

package main

// Live upgrade (issue 19), black-box: a real circled (the -race build of
// binDir) executes a second build of circled (another version) in place,
// through circlectl upgrade. Its children are real processes; sigtrap
// records every signal its trap mode gets.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
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
	"golang.org/x/sys/unix"
)

const upgradeV2 = "upgrade-v2-test"

var (
	upgradeBinOnce sync.Once
	upgradeBinErr  error
)

// upgradeBinary builds circled again, stamped with version upgradeV2
// (without -race: quicker to build, and what a package would install).
func upgradeBinary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "circled-v2")
	upgradeBinOnce.Do(func() {
		cmd := exec.Command("go", "build", "-ldflags", "-X github.com/circle-supervisor/circle/internal/buildinfo.Version="+upgradeV2, "-o", path, "./cmd/circled")
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			upgradeBinErr = fmt.Errorf("building circled %s: %v\n%s", upgradeV2, err, out)
		}
	})
	if upgradeBinErr != nil {
		t.Fatal(upgradeBinErr)
	}
	return path
}

// upgradeSnapshot is what must not change across an upgrade: each
// watcher's processes (pid, start time, restarts).
func upgradeSnapshot(t *testing.T, d *pid1Daemon, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		w, err := d.status(n)
		if err != nil {
			t.Fatal(err)
		}
		var ps []string
		for _, p := range w.Processes {
			ps = append(ps, fmt.Sprintf("wid=%d pid=%d started=%s restarts=%d planned=%d state=%s", p.WID, p.PID, p.StartedAt.Format(time.RFC3339Nano), p.Restarts, p.PlannedRestarts, p.State))
		}
		out[n] = w.State + " " + strings.Join(ps, "; ")
	}
	return out
}

// waitActive waits until every watcher of names is active (min_uptime
// passed: the snapshot does not change by itself).
func waitActive(t *testing.T, d *pid1Daemon, names ...string) {
	t.Helper()
	for _, n := range names {
		testhelper.Poll(t, 30*time.Second, n+" active", func() (bool, string) {
			w, err := d.status(n)
			return err == nil && w.State == "active", fmt.Sprintf("%+v %v", w, err)
		})
	}
}

func daemonVersion(t *testing.T, d *pid1Daemon) ctl.Version {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := ctl.NewClient(d.socket).Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const upgradeQuiet = `
[watcher:trap]
cmd = {sigtrap} trap {dir}/trap
numprocesses = 2

[watcher:quiet]
cmd = sh -c 'echo before-the-upgrade; exec sleep 1000'
`

// Step 1: a binary that is missing, not executable, not a program for
// this machine, not a circled, or a circled reading another state
// format is refused: circlectl exits 1 with the reason, circled keeps
// running as it was (same version, same processes, no signal).
func TestLiveUpgradeRefused(t *testing.T) {
	d := pid1Start(t, pid1Opts{notPID1: true}, "", upgradeQuiet+`
[watcher:ticker]
cmd = sh -c 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done'
`)
	d.waitLines("trap", "ready trap", 2, 10*time.Second)
	waitActive(t, d, "trap", "quiet", "ticker")
	before := upgradeSnapshot(t, d, "trap", "quiet", "ticker")
	v0 := daemonVersion(t, d)

	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\necho hi\n"), 0o644)
	foreign := filepath.Join(dir, "foreign")
	// An ELF header for a machine this kernel does not run: exec fails
	// with ENOEXEC, as for a binary of another architecture.
	elf := append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 56)...)
	elf[18] = 0xff
	os.WriteFile(foreign, elf, 0o755)
	notCircled := filepath.Join(dir, "true")
	os.WriteFile(notCircled, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	otherFormat := filepath.Join(dir, "circled-format99")
	os.WriteFile(otherFormat, []byte("#!/bin/sh\necho '{\"version\":\"v99\",\"state_formats\":[99]}'\n"), 0o755)
	// Passes its check, then is gone: the exec fails after circled
	// froze and accepted; it must go on as before (Abort).
	vanishing := filepath.Join(dir, "vanishing")
	os.WriteFile(vanishing, []byte("#!/bin/sh\n[ \"$1\" = __upgrade-check ] || exit 2\n"+
		"echo '{\"version\":\"v-gone\",\"state_formats\":[1]}'\nrm -f \"$0\"\n"), 0o755)
	failing := filepath.Join(dir, "failing")
	os.WriteFile(failing, []byte("#!/bin/sh\necho 'cannot run here' >&2\nexit 3\n"), 0o755)

	for _, c := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "missing"), "no such file"},
		{"not executable", noexec, "permission denied"},
		{"other architecture", foreign, "exec format error"},
		{"not a circled", notCircled, "not a circled"},
		{"other state format", otherFormat, "formats [99]"},
		{"check fails", failing, "cannot run here"},
		{"exec fails", vanishing, "upgrade failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, "circlectl"), "--socket", d.socket, "upgrade", "--binary", c.path)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("circlectl upgrade: %v, want exit 1; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("output %q does not say %q", out, c.want)
			}
		})
	}
	v := daemonVersion(t, d)
	if !strings.Contains(v.UpgradeError, "vanishing") {
		t.Errorf("version's upgrade_error %q does not name the failed exec", v.UpgradeError)
	}
	if v.UpgradeError = ""; v != v0 || v.Upgrades != 0 {
		t.Errorf("version after refused upgrades: %+v, want %+v", v, v0)
	}
	if after := upgradeSnapshot(t, d, "trap", "quiet", "ticker"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("processes changed:\nbefore %v\nafter  %v", before, after)
	}
	if sigs := pid1Grep(d.path("trap"), "signal"); len(sigs) > 0 {
		t.Errorf("children got signals: %q", sigs)
	}
	// The output pumps run again after the failed exec: ticker's lines
	// keep coming, in order.
	lastTick := func() int {
		out, _ := d.circlectl("logs", "-n", "1", "ticker")
		n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "ticker.1 | tick")))
		return n
	}
	n0 := lastTick()
	testhelper.Poll(t, 20*time.Second, "ticker's output after the failed upgrade", func() (bool, string) {
		n := lastTick()
		return n > n0+2, fmt.Sprintf("tick %d, %d before", n, n0)
	})
	out, _ := d.circlectl("logs", "-n", "100000", "ticker")
	for i, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if want := fmt.Sprintf("ticker.1 | tick %d", i+1); l != want {
			t.Fatalf("ticker's ring line %d is %q, want %q", i+1, l, want)
		}
	}
	// Still fully working: a command that changes something.
	if _, err := d.circlectl("incr", "trap"); err != nil {
		t.Fatal(err)
	}
	d.waitLines("trap", "ready trap", 3, 10*time.Second)
	if _, err := d.circlectl("quit"); err != nil {
		t.Fatal(err)
	}
	if code, _ := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("circled exited %d", code)
	}
}

// Steps 2-4: circled executes circled-v2 in place while a child floods
// its FileStream, another waits in backoff and others idle: same pid,
// same processes (pids, start times, restarts), no signal to any child,
// every output line exactly once and in order, the ring keeps lines
// from before, the backoff timer fires in the new binary, an upgrade
// event, and a second upgrade back to the first binary works too. Then
// a clean quit stops everything.
func TestLiveUpgradeAdopts(t *testing.T) {
	if _, err := exec.LookPath("awk"); err != nil {
		t.Skip("SKIP: no awk in PATH for the flooding child")
	}
	v2 := upgradeBinary(t)
	watchers := upgradeQuiet + `
[watcher:flood]
cmd = awk 'BEGIN { for (i = 1; ; i++) { print i; if (i % 2000 == 0) system("sleep 0.01") } }'
stop_children = true
stdout_stream.class = FileStream
stdout_stream.filename = {dir}/flood.out

[watcher:crashy]
cmd = sh -c 'echo start >> {dir}/crashy; exit 1'
check_flapping = false
backoff_max = 2
`
	d := pid1Start(t, pid1Opts{notPID1: true}, "", watchers)
	d.waitLines("trap", "ready trap", 2, 10*time.Second)
	since := time.Now()
	// crashy backs off; wait until its delays are long (1.6 s, 2 s).
	testhelper.Poll(t, 30*time.Second, "crashy backing off after 5 restarts", func() (bool, string) {
		w, err := d.status("crashy")
		if err != nil || len(w.Processes) == 0 {
			return false, fmt.Sprint(err)
		}
		return w.State == "backoff" && w.Processes[0].Restarts >= 5, fmt.Sprintf("%s %+v", w.State, w.Processes)
	})
	// Upgrade in the middle of the flood.
	testhelper.Poll(t, 30*time.Second, "the flood started", func() (bool, string) {
		n := len(pid1Grep(d.path("flood.out"), ""))
		return n > 1000, fmt.Sprintf("%d lines", n)
	})
	stable := []string{"trap", "quiet", "flood"}
	waitActive(t, d, stable...)
	before := upgradeSnapshot(t, d, stable...)
	crashyBefore, _ := d.status("crashy")
	v1 := daemonVersion(t, d)
	// Status requests in a loop across both upgrades: none fails (the
	// listener is handed over; a request cut by the exec is asked again).
	var statusRuns, statusFails atomic.Int64
	var firstFail atomic.Value
	stopLoop := make(chan struct{})
	var loopDone sync.WaitGroup
	loopDone.Add(1)
	go func() {
		defer loopDone.Done()
		c := ctl.NewClient(d.socket)
		for {
			select {
			case <-stopLoop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := c.Status(ctx, nil)
			cancel()
			statusRuns.Add(1)
			if err != nil {
				statusFails.Add(1)
				firstFail.CompareAndSwap(nil, err.Error())
			}
		}
	}()
	out, err := d.circlectl("upgrade", "--binary", v2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s(flood at %d lines just after)", out, len(pid1Grep(d.path("flood.out"), "")))
	v := daemonVersion(t, d)
	if v.Version != upgradeV2 || v.PID != v1.PID || v.Upgrades != 1 {
		t.Fatalf("version after the upgrade: %+v (before: %+v)", v, v1)
	}
	if !strings.Contains(string(out), upgradeV2) {
		t.Errorf("circlectl upgrade said %q", out)
	}
	if after := upgradeSnapshot(t, d, stable...); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("processes changed:\nbefore %v\nafter  %v", before, after)
	}
	// The ring still has what quiet wrote before.
	if logs, err := d.circlectl("logs", "-n", "10", "quiet"); err != nil || !strings.Contains(string(logs), "quiet.1 | before-the-upgrade") {
		t.Errorf("logs -n after the upgrade: %q %v", logs, err)
	}
	// The backoff timer fires in the new binary.
	testhelper.Poll(t, 30*time.Second, "crashy restarted by the new binary", func() (bool, string) {
		w, err := d.status("crashy")
		if err != nil || len(w.Processes) == 0 {
			return false, fmt.Sprint(err)
		}
		return w.Processes[0].Restarts >= crashyBefore.Processes[0].Restarts+2, fmt.Sprintf("%+v", w.Processes)
	})
	// The upgrade event.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found := errors.New("found")
	err = ctl.NewClient(d.socket).Events(ctx, ctl.EventsRequest{Since: since}, func(ev ctl.Event, line []byte) error {
		if ev.Type == "upgrade" && strings.Contains(ev.Reason, upgradeV2) {
			return found
		}
		return nil
	})
	if err != found {
		t.Errorf("no upgrade event (%v)", err)
	}
	cancel()

	// And back to the first binary (the path it was started from).
	before = upgradeSnapshot(t, d, stable...)
	if out, err = d.circlectl("upgrade"); err != nil {
		t.Fatal(err)
	}
	if v := daemonVersion(t, d); v.Version != v1.Version || v.PID != v1.PID || v.Upgrades != 2 {
		t.Fatalf("version after the second upgrade: %+v", v)
	}
	close(stopLoop)
	loopDone.Wait()
	if n := statusFails.Load(); n > 0 {
		t.Errorf("%d of %d status requests failed across the upgrades; first: %v", n, statusRuns.Load(), firstFail.Load())
	}
	t.Logf("%d status requests across the upgrades", statusRuns.Load())
	// The event history crossed both execs: both upgrade events.
	var ups []string
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	ctl.NewClient(d.socket).Events(ctx2, ctl.EventsRequest{Since: since}, func(ev ctl.Event, line []byte) error {
		if ev.Type == "upgrade" {
			ups = append(ups, ev.Reason)
		}
		if len(ups) == 2 {
			return found
		}
		return nil
	})
	if len(ups) != 2 || ups[0] != v1.Version+" -> "+upgradeV2 || ups[1] != upgradeV2+" -> "+v1.Version {
		t.Errorf("upgrade events after two upgrades: %q", ups)
	}
	if after := upgradeSnapshot(t, d, stable...); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("processes changed by the second upgrade:\nbefore %v\nafter  %v", before, after)
	}
	if sigs := pid1Grep(d.path("trap"), "signal"); len(sigs) > 0 {
		t.Errorf("children got signals: %q", sigs)
	}
	// Every line exactly once, in order, across both upgrades.
	if _, err := d.circlectl("stop", "flood"); err != nil {
		t.Fatal(err)
	}
	checkFlood(t, d.path("flood.out"))
	// Still in control of its children: quit stops them all.
	pids := map[int]bool{}
	for _, n := range stable {
		w, _ := d.status(n)
		for _, p := range w.Processes {
			pids[p.PID] = true
			d.trackPid(p.PID)
		}
	}
	if _, err := d.circlectl("quit"); err != nil {
		t.Fatal(err)
	}
	if code, _ := d.wait(30 * time.Second); code != 0 {
		t.Fatalf("circled exited %d", code)
	}
	for pid := range pids {
		if pid1Alive(pid) {
			t.Errorf("pid %d survived circled's quit", pid)
		}
	}
	if got := len(pid1Grep(d.path("trap"), "graceful done")); got != 2 {
		t.Errorf("trap: %d graceful stops, want 2:\n%s", got, strings.Join(pid1Grep(d.path("trap"), ""), "\n"))
	}
}

// checkFlood checks that path holds 1..N, each once, in order (the last
// may be cut short: the child was stopped in the middle of a write).
func checkFlood(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	for i, got := range lines {
		want := strconv.Itoa(i + 1)
		if got != want && !(i == len(lines)-1 && strings.HasPrefix(want, got)) {
			t.Fatalf("%s: line %d is %q, want %s (lost, duplicated or reordered output)", path, i+1, got, want)
		}
	}
	t.Logf("%s: %d lines in order", path, len(lines))
}

// Under systemd (Type=notify) the new binary says MAINPID= (the same
// pid) and READY=1 again; NOTIFY_SOCKET still reaches no child.
func TestLiveUpgradeSdNotify(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: runs real daemons; skipped with -short")
	}
	v2 := upgradeBinary(t)
	dir := testhelper.ShortDir(t)
	nsock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	socket := filepath.Join(dir, "c.sock")
	cfg := filepath.Join(dir, "circled.ini")
	envOut := filepath.Join(dir, "env")
	os.WriteFile(cfg, []byte("[circled]\nsocket = "+socket+"\nwatch_config = false\n[watcher:w]\ncopy_env = true\n"+
		"cmd = /bin/sh -c 'env > "+envOut+".$(circle.wid); exec sleep 1000'\n"), 0o644)
	cmd := exec.Command(filepath.Join(binDir, "circled"), "-c", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+nsock, "GORACE=atexit_sleep_ms=10")
	logf, _ := os.Create(filepath.Join(dir, "circled.log"))
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	next := func(want string) {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "circled.log"))
			t.Fatalf("waiting for %s: %v\n%s", want, err, b)
		}
		if got := string(buf[:n]); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %s", got, want)
		}
	}
	next("READY=1")
	ctlc := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(filepath.Join(binDir, "circlectl"), append([]string{"--socket", socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("circlectl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ctlc("upgrade", "--binary", v2)
	next("MAINPID=" + strconv.Itoa(cmd.Process.Pid))
	next("READY=1")
	// A child the new binary starts does not get NOTIFY_SOCKET either.
	ctlc("incr", "w")
	var b []byte
	testhelper.Eventually(t, 20*time.Second, "the new child to write its environment", func() bool {
		b, _ = os.ReadFile(envOut + ".2")
		return strings.Contains(string(b), "CIRCLED_WID=")
	})
	if strings.Contains(string(b), "NOTIFY_SOCKET") || strings.Contains(string(b), upgradeStateEnv) {
		t.Errorf("a child started after the upgrade inherited NOTIFY_SOCKET or %s:\n%s", upgradeStateEnv, b)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("circled: %v", err)
	}
}

// circled --daemon: the daemon (not the launcher, gone by then) is
// upgraded in place and keeps its pid and session.
func TestLiveUpgradeDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: runs real daemons; skipped with -short")
	}
	v2 := upgradeBinary(t)
	dir := testhelper.ShortDir(t)
	socket := filepath.Join(dir, "c.sock")
	cfg := filepath.Join(dir, "circled.ini")
	os.WriteFile(cfg, []byte("[circled]\nsocket = "+socket+"\nwatch_config = false\nlogfile = "+filepath.Join(dir, "circled.log")+
		"\n[watcher:w]\ncmd = sleep 1000\nnumprocesses = 2\n"), 0o644)
	launcher := exec.Command(filepath.Join(binDir, "circled"), "-c", cfg, "--daemon")
	launcher.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
	if out, err := launcher.CombinedOutput(); err != nil {
		t.Fatalf("circled --daemon: %v\n%s", err, out)
	}
	c := ctl.NewClient(socket)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v0, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(v0.PID, syscall.SIGKILL) // if the test fails
	var st0 ctl.Status
	testhelper.Poll(t, 30*time.Second, "w active", func() (bool, string) {
		st0, err = c.Status(ctx, []string{"w"})
		return err == nil && st0.Watchers[0].State == "active", fmt.Sprintf("%+v %v", st0, err)
	})
	out, err := exec.Command(filepath.Join(binDir, "circlectl"), "--socket", socket, "upgrade", "--binary", v2).CombinedOutput()
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "circled.log"))
		t.Fatalf("circlectl upgrade: %v\n%s\nlog:\n%s", err, out, b)
	}
	v1, err := c.Version(ctx)
	if err != nil || v1.PID != v0.PID || v1.Version != upgradeV2 {
		t.Fatalf("after the upgrade: %+v %v (before: %+v)", v1, err, v0)
	}
	st1, err := c.Status(ctx, []string{"w"})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := fmt.Sprint(st0.Watchers[0].Processes), fmt.Sprint(st1.Watchers[0].Processes); a != b {
		t.Errorf("processes changed:\n%s\n%s", a, b)
	}
	if sid, _ := unix.Getsid(v0.PID); sid != v0.PID {
		t.Errorf("the daemon's session is %d, want its own (%d)", sid, v0.PID)
	}
	if err := c.Quit(ctx, true); err != nil {
		t.Fatal(err)
	}
	testhelper.Poll(t, 30*time.Second, "the daemon to exit", func() (bool, string) {
		return syscall.Kill(v0.PID, 0) != nil, ""
	})
	for _, p := range st1.Watchers[0].Processes {
		if pid1Alive(p.PID) {
			t.Errorf("child %d survived quit", p.PID)
		}
	}
}

// A process that exits during the upgrade stays a zombie until the new
// binary's reaper collects it, and its exit goes to its adopted slot:
// the new binary restarts it. The "new binary" is a script executed in
// place (same pid) that makes the child exit, waits until it is a zombie
// of circled's pid, then executes circled-v2. It is perl, not sh: a
// shell reaps any child while it waits for one of its own.
func TestLiveUpgradeExitDuringUpgrade(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("SKIP: no perl for the in-place wrapper (a shell would reap the child itself)")
	}
	v2 := upgradeBinary(t)
	d := pid1Start(t, pid1Opts{notPID1: true}, "", `
[watcher:leaver]
cmd = sh -c 'if [ -e {dir}/trigger ]; then exec sleep 1000; fi; while [ ! -e {dir}/trigger ]; do sleep 0.02; done; exit 7'
min_uptime = 0.1
`)
	waitActive(t, d, "leaver")
	w0, _ := d.status("leaver")
	pid := w0.Processes[0].PID
	d.trackPid(pid)
	wrapper := filepath.Join(d.dir, "circled-wrapper")
	script := fmt.Sprintf(`#!%s
if (@ARGV && $ARGV[0] eq "%s") { exec "%s", @ARGV; die "exec: $!" }
open(my $t, ">", "%s") or die "trigger: $!"; close($t);
while (1) {
	open(my $s, "<", "/proc/%d/stat") or die "stat: $!";
	my @f = split(/ /, scalar(<$s>)); close($s);
	last if $f[2] eq "Z";
	select(undef, undef, undef, 0.01);
}
exec "%s", @ARGV; die "exec: $!";
`, perl, upgradeCheckCmd, v2, d.path("trigger"), pid, v2)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := d.circlectl("upgrade", "--binary", wrapper); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	testhelper.Poll(t, 30*time.Second, "the new binary to restart leaver after its exit 7", func() (bool, string) {
		w, err := d.status("leaver")
		if err != nil || len(w.Processes) == 0 {
			return false, fmt.Sprint(err)
		}
		p := w.Processes[0]
		return p.PID != pid && p.PID != 0 && p.Restarts == 1 && p.LastExit.Code == 7 && w.State == "active", fmt.Sprintf("%s %+v", w.State, p)
	})
	if v := daemonVersion(t, d); v.Version != upgradeV2 || v.Upgrades != 1 {
		t.Errorf("version %+v", v)
	}
	if pid1Alive(pid) {
		t.Errorf("pid %d still there", pid)
	}
	if _, err := d.circlectl("quit"); err != nil {
		t.Fatal(err)
	}
	if code, _ := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("circled exited %d", code)
	}
}

// The containment subtree is reused by the new binary: circled stays in
// the same cgroup, no subtree is nested under its leaf, and each adopted
// process keeps its cgroup (a stop reaches its escaped descendants).
func TestLiveUpgradeReusesCgroups(t *testing.T) {
	v2 := upgradeBinary(t)
	d := pid1Start(t, pid1Opts{notPID1: true}, "", escapers)
	d.requireCgroups(t)
	daemon, esc := d.escapees(t, 1)
	cg := func() string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", d.pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "0::"); ok {
				return v
			}
		}
		t.Fatalf("no cgroup v2 line in %s", b)
		return ""
	}
	before := cg()
	if out, err := d.circlectl("upgrade", "--binary", v2); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if after := cg(); after != before {
		t.Errorf("circled's cgroup after the upgrade: %s, before: %s", after, before)
	}
	if l := pid1Grep(d.logPath, "process containment:"); len(l) != 2 || l[0][strings.Index(l[0], "msg="):] != l[1][strings.Index(l[1], "msg="):] {
		t.Errorf("the new binary's containment differs:\n%s", strings.Join(l, "\n"))
	}
	// The adopted process kept its cgroup: a stop reaches what escaped
	// its process group.
	if _, err := d.circlectl("stop", "esc"); err != nil {
		t.Fatal(err)
	}
	d.escapeesGone(t, "stop after the upgrade", daemon, esc, 1)
	if _, err := d.circlectl("quit"); err != nil {
		t.Fatal(err)
	}
	if code, _ := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("circled exited %d", code)
	}
}

// [socket:NAME] sockets are handed over: same address, same socket (its
// inode in circled), still accepting; the processes holding them keep
// them.
func TestLiveUpgradeSockets(t *testing.T) {
	v2 := upgradeBinary(t)
	d := pid1Start(t, pid1Opts{notPID1: true}, "", `
[socket:web]
host = 127.0.0.1
port = 0

[watcher:srv]
cmd = sh -c 'exec sleep 1000' $(circle.sockets.web)
`)
	waitActive(t, d, "srv")
	sockInfo := func() (addr string, fd int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ss, err := ctl.NewClient(d.socket).Sockets(ctx)
		if err != nil || len(ss) != 1 {
			t.Fatalf("sockets: %+v %v", ss, err)
		}
		return ss[0].Address, ss[0].FD
	}
	inode := func(pid, fd int) string {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
		return l
	}
	dial := func(addr string) {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connecting to %s: %v", addr, err)
		}
		c.Close()
	}
	addr0, fd0 := sockInfo()
	ino0 := inode(d.pid, fd0)
	before := upgradeSnapshot(t, d, "srv")
	w, _ := d.status("srv")
	child := w.Processes[0].PID
	d.trackPid(child)
	childIno := inode(child, 3)
	dial(addr0)
	if out, err := d.circlectl("upgrade", "--binary", v2); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	addr1, fd1 := sockInfo()
	if addr1 != addr0 || inode(d.pid, fd1) != ino0 || ino0 == "" {
		t.Errorf("socket after the upgrade: %s %s (fd %d), before: %s %s (fd %d)", addr1, inode(d.pid, fd1), fd1, addr0, ino0, fd0)
	}
	if got := inode(child, 3); got != childIno || got != ino0 {
		t.Errorf("the child's fd 3 is %q, was %q (circled's %q)", got, childIno, ino0)
	}
	dial(addr1)
	if after := upgradeSnapshot(t, d, "srv"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("processes changed:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := d.circlectl("quit"); err != nil {
		t.Fatal(err)
	}
	if code, _ := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("circled exited %d", code)
	}
}
