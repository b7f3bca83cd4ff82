//go:build linux

package main

// Issue 17 §3 against the real circled and circlectl: hooks.* command
// lines run at their points with the CIRCLED_* variables, a before_*
// hook that fails vetoes, hooks.timeout kills a hook, and a hung hook
// blocks neither the control socket nor other watchers.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// before_start exiting 1 vetoes `circlectl start`: it exits 1 naming the
// hook, its status and its last line, and status shows the veto.
func TestHooksBeforeStartVetoes(t *testing.T) {
	dir := t.TempDir()
	p := startCircled(t, dir, `[watcher:w]
cmd = sleep 1000
autostart = false
hooks.before_start = echo checking; echo "database is down" >&2; exit 1
`)
	p.up()
	out, err := p.ctlWithin(60*time.Second, "start", "w")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("start: err %v, want exit 1; output:\n%s", err, out)
	}
	for _, want := range []string{"before_start", "exit code 1", "database is down"} {
		if !strings.Contains(out, want) {
			t.Errorf("start's message lacks %q:\n%s", want, out)
		}
	}
	if pids := p.pidsOf("w"); len(pids) != 0 {
		t.Errorf("vetoed start ran %v", pids)
	}
	st := p.mustCtl("status", "w")
	if !strings.Contains(st, "before_start") {
		t.Errorf("status does not show the veto:\n%s", st)
	}
	// The event stream has it too (replayed with --since).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lines := p.eventLines(ctx, "--json", "--since", "1h", "w")
	for {
		l := nextLine(t, lines, 30*time.Second)
		if strings.Contains(l, `"type":"veto"`) {
			if !strings.Contains(l, "hooks.before_start") || !strings.Contains(l, "database is down") || !strings.Contains(l, `"watcher":"w"`) {
				t.Errorf("veto event lacks the hook, its output or the watcher: %s", l)
			}
			break
		}
	}
}

// after_spawn and on_exit get the watcher, wid, pid and the exit.
func TestHooksVariables(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "hooks.log")
	rec := `echo "$CIRCLED_EVENT w=$CIRCLED_WATCHER wid=$CIRCLED_WID pid=$CIRCLED_PID code=${CIRCLED_EXIT_CODE-} sig=${CIRCLED_EXIT_SIGNAL-} mine=$MINE" >> ` + log
	p := startCircled(t, dir, `[watcher:w]
cmd = sleep 1000
hooks.after_spawn = `+rec+`
hooks.on_exit = `+rec+`
[env:w]
MINE = yes
`)
	p.up()
	var pid int
	testhelper.Eventually(t, waitTimeout, "w running", func() bool {
		ps := p.pidsOf("w")
		if len(ps) == 1 {
			pid = ps[0]
		}
		return pid != 0
	})
	spawned := "after_spawn w=w wid=1 pid=" + strconv.Itoa(pid) + " code= sig= mine=yes"
	testhelper.Eventually(t, waitTimeout, "after_spawn's line", func() bool { return strings.Contains(readFile(log), spawned) })
	syscall.Kill(pid, syscall.SIGTERM)
	exited := "on_exit w=w wid=1 pid=" + strconv.Itoa(pid) + " code= sig=TERM mine=yes"
	testhelper.Eventually(t, waitTimeout, "on_exit's line", func() bool { return strings.Contains(readFile(log), exited) })
	if t.Failed() {
		t.Logf("hooks.log:\n%s", readFile(log))
	}
}

// A hook that runs past hooks.timeout is killed, its whole process
// group; a hung hook blocks neither status nor another watcher.
func TestHooksTimeoutAndHung(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "hook.pid")
	p := startCircled(t, dir, `[watcher:slow]
cmd = sleep 1000
hooks.timeout = 1
hooks.after_spawn = echo $$ > `+pidFile+`; sleep 1000 & sleep 1000
[watcher:hung]
cmd = sleep 1001
hooks.timeout = 600
hooks.after_spawn = sleep 1000
[watcher:other]
cmd = sleep 1002
`)
	p.up()
	var hookPID int
	testhelper.Eventually(t, waitTimeout, "slow's hook to run", func() bool {
		hookPID, _ = strconv.Atoi(strings.TrimSpace(readFile(pidFile)))
		return hookPID > 0
	})
	testhelper.Eventually(t, waitTimeout, "the timed-out hook's group killed", func() bool {
		return syscall.Kill(-hookPID, 0) != nil
	})
	testhelper.Eventually(t, waitTimeout, "the timeout in circled's log", func() bool {
		return strings.Contains(p.out.String(), "timed out")
	})
	// hung's hook sleeps on: status and a restart of other return.
	if out, err := p.ctlWithin(60*time.Second, "status"); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	before := p.pidsOf("other")
	if out, err := p.ctlWithin(60*time.Second, "restart", "other"); err != nil {
		t.Fatalf("restart other: %v\n%s", err, out)
	}
	if after := p.pidsOf("other"); len(after) != 1 || len(before) != 1 || after[0] == before[0] {
		t.Fatalf("other's pids %v then %v", before, after)
	}
	p.quit()
}
