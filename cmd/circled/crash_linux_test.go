//go:build linux

package main

// Issue 12 §5, black-box: kill -9 circled while 2 children run, start it
// again on the same config and socket: still 2 children; the 2 orphans
// got TERM (their cleanup finished) and were logged as warnings before
// the new ones started. With cgroups and without (the state file next
// to the socket).

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashPair = `
[watcher:pair]
cmd = {sigtrap} trap {dir}/w 300ms
numprocesses = 2
graceful_timeout = 10
`

func TestCrashRecoveryKill9(t *testing.T) {
	for _, mode := range []struct {
		name string
		env  []string
	}{{"cgroups", nil}, {"pgroups", []string{"CIRCLED_NO_CGROUPS=1"}}} {
		t.Run(mode.name, func(t *testing.T) {
			d1 := pid1Start(t, pid1Opts{notPID1: true, env: mode.env}, "", crashPair)
			if len(pid1Grep(d1.logPath, "crash recovery: state file")) == 0 {
				t.Fatal("crash recovery is off: circled logged no state file (serve.go must pass the socket as supervisor.Options.Socket)")
			}
			d1.waitLines("w", "ready trap", 2, 10*time.Second)
			var old []int
			for _, l := range pid1Grep(d1.path("w"), "ready trap") {
				pid := pid1Field(l, "pid")
				old = append(old, pid)
				d1.trackPid(pid)
			}
			d1.signal(syscall.SIGKILL)
			d1.wait(10 * time.Second)
			for _, pid := range old {
				if !pid1Alive(pid) {
					t.Fatalf("child %d died with circled: the test proves nothing", pid)
				}
			}
			d2 := pid1Start(t, pid1Opts{notPID1: true, env: mode.env, dir: d1.dir, logName: "circled2.log"}, "", crashPair)
			d2.waitLines("w", "ready trap", 4, 20*time.Second)
			if got, want := d2.kinds("w"), "ready ready start start done done ready ready"; got != want {
				t.Fatalf("events %q, want %q (the orphans stopped gracefully before the new children started)\nw:\n%s", got, want, strings.Join(pid1Grep(d2.path("w"), ""), "\n"))
			}
			w, err := d2.status("pair")
			if err != nil || len(w.Processes) != 2 {
				t.Fatalf("status: %+v %v", w, err)
			}
			for _, pid := range old {
				if pid1Alive(pid) {
					t.Errorf("orphan %d still runs", pid)
				}
				found := false
				for _, l := range pid1Grep(d2.logPath, "crash recovery: stopping a process") {
					found = found || (strings.Contains(l, "level=WARN") && strings.Contains(l, "pid="+strconv.Itoa(pid)+" "))
				}
				if !found {
					t.Errorf("no warning naming orphan %d:\n%s", pid, d2.log())
				}
			}
			if _, err := d2.circlectl("quit"); err != nil {
				t.Fatal(err)
			}
			if code, _ := d2.wait(20 * time.Second); code != 0 {
				t.Fatalf("circled exited %d", code)
			}
		})
	}
}
