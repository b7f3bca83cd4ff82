//go:build linux

package main

// Issue 14 §1, the supervisor's half, against the real circled and
// circlectl binaries with real signals: every command on a watcher goes
// through its lane (supervisor.go "Commands on one watcher"), and
// shutdown refuses and cancels everything else.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// pidAlive reports whether pid runs (a zombie does not count).
func pidAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || len(b) <= i+2 || b[i+2] != 'Z'
}

// pidsIn returns the pids written one a line to file.
func pidsIn(t *testing.T, file string) []int {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q", file, b)
		}
		pids = append(pids, pid)
	}
	return pids
}

func writeIni(t *testing.T, dir, cfg string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "circled.ini"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// SIGHUP while shutdown stops a slow watcher: the new config is not
// loaded, the watcher it adds never starts, circled exits 0 and leaves no
// process behind. (It used to reload once the stops were done and start
// the new watcher after "circled stopped".)
func TestRaceSIGHUPDuringShutdown(t *testing.T) {
	dir := t.TempDir()
	term := filepath.Join(dir, "term")
	late := filepath.Join(dir, "late.pids")
	base := "[circled]\nwatch_config = false\n\n[watcher:slow]\ngraceful_timeout = 30\n" +
		"cmd = sh -c 'trap \"echo > " + term + "; sleep 2; exit 0\" TERM; while :; do sleep 0.05; done'\n"
	p := startCircled(t, dir, base)
	p.up()
	p.waitState("slow", "active")
	writeIni(t, dir, base+"\n[watcher:late]\ncmd = sh -c 'echo $$ >> "+late+"; exec sleep 1000'\n")

	p.cmd.Process.Signal(syscall.SIGTERM)
	testhelper.Eventually(t, waitTimeout, "slow to get its stop signal", func() bool {
		_, err := os.Stat(term)
		return err == nil
	})
	// slow takes 2 s to go: shutdown is under way for all of them.
	for range 3 {
		p.cmd.Process.Signal(syscall.SIGHUP)
	}
	if code := p.exit(); code != 0 {
		t.Fatalf("circled exited %d:\n%s", code, p.out)
	}
	if pids := pidsIn(t, late); len(pids) > 0 {
		for _, pid := range pids {
			if pidAlive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		t.Fatalf("SIGHUP during shutdown started the new watcher (pids %v):\n%s", pids, p.out)
	}
	if strings.Contains(p.out.String(), "config reloaded") {
		t.Fatalf("SIGHUP during shutdown reloaded the config:\n%s", p.out)
	}
}

// SIGTERM while a reload waits for a new watcher that never becomes
// ready: circled stops and exits without waiting for the reload (which
// would take ready.timeout, 120 s). Only "well before 120 s" is asserted.
func TestRaceSIGTERMDuringLongReload(t *testing.T) {
	dir := t.TempDir()
	base := "[circled]\nwatch_config = false\n\n[watcher:a]\ncmd = sleep 1000\n"
	p := startCircled(t, dir, base)
	p.up()
	p.waitState("a", "active")
	writeIni(t, dir, base+"\n[watcher:never]\ncmd = sleep 1001\nready.exec = false\nready.timeout = 120\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	testhelper.Eventually(t, waitTimeout, "never to be starting", func() bool {
		out, err := p.ctl("status", "--json", "never")
		return err == nil && strings.Contains(out, `"starting"`)
	})
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("circled still running 60 s after SIGTERM during a reload:\n%s", p.out)
	}
	t.Logf("circled exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	if p.code != 0 {
		t.Fatalf("circled exited %d:\n%s", p.code, p.out)
	}
}

// A reload that restarts (or replaces) web, its command changed, and,
// first, a higher-priority watcher whose new process takes its time to
// become ready; the operator stops web while the reload waits: web stays
// stopped (the last command), the reload does not start it again.
func TestRaceReloadDoesNotRestartStoppedWatcher(t *testing.T) {
	dir := t.TempDir()
	gate := filepath.Join(dir, "go")
	webPids := filepath.Join(dir, "web.pids")
	web := func(arg string) string {
		return "\n[watcher:web]\npriority = 1\ncmd = sh -c 'echo $$ >> " + webPids + "; exec sleep " + arg + "'\n"
	}
	const head = "[circled]\nwatch_config = false\n"
	p := startCircled(t, dir, head+"\n[watcher:first]\npriority = 10\ncmd = sleep 1000\n"+web("1000"))
	p.up()
	p.waitState("first", "active")
	p.waitState("web", "active")
	firstPid := p.livePIDs("first")
	writeIni(t, dir, head+"\n[watcher:first]\npriority = 10\ncmd = sleep 1001\nready.exec = test -e "+gate+"\nready.timeout = 120\n"+web("1001"))

	reloaded := make(chan error, 1)
	go func() {
		_, err := p.ctl("reloadconfig")
		reloaded <- err
	}()
	// The reload now waits for the new first to be ready (beside the old
	// one, or after stopping it) before it touches web.
	testhelper.Poll(t, waitTimeout, "the reload to wait for first", func() (bool, string) {
		f := p.watcher("first")
		for _, pr := range f.Processes {
			if pr.PID > 0 && pr.PID != firstPid[0] {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", f)
	})
	p.mustCtl("stop", "web")
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("reloadconfig: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("reloadconfig still running:\n%s", p.out)
	}
	if w := p.watcher("web"); w.State != "stopped" {
		t.Fatalf("web after the reload: %+v (the operator stopped it during the reload)", w)
	}
	if pids := pidsIn(t, webPids); len(pids) != 1 {
		t.Fatalf("web was started %d times, want once (before the reload): %v", len(pids), pids)
	}
	p.quit()
}

// circlectl restart web starts web's stopped dependencies first, as
// start does (issue 15), and waits for them.
func TestRaceRestartStartsStoppedDependencies(t *testing.T) {
	dir := t.TempDir()
	order := filepath.Join(dir, "order")
	p := startCircled(t, dir, "[circled]\nwatch_config = false\n"+
		"\n[watcher:db]\ncmd = sh -c 'echo db >> "+order+"; exec sleep 1000'\nready.exec = test -e "+order+"\nready.interval = 0.05\n"+
		"\n[watcher:web]\ndepends_on = db\ncmd = sh -c 'echo web >> "+order+"; exec sleep 1001'\n")
	p.up()
	p.waitState("web", "active")
	p.mustCtl("stop", "web", "db")
	if err := os.Remove(order); err != nil {
		t.Fatal(err)
	}
	restarted := make(chan error, 1)
	go func() {
		_, err := p.ctl("restart", "web")
		restarted <- err
	}()
	select {
	case err := <-restarted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("restart web still waiting after %v (for db, which nothing started?)", waitTimeout)
	}
	for _, n := range []string{"db", "web"} {
		if w := p.watcher(n); w.State != "active" {
			t.Fatalf("%s after restart web: %+v", n, w)
		}
	}
	if b, _ := os.ReadFile(order); string(b) != "db\nweb\n" {
		t.Fatalf("start order %q, want db then web", b)
	}
	p.quit()
}
