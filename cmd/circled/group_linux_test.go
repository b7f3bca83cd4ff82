//go:build linux

package main

// Issue 12 §3: the rest of a process group gets its grace period, and a
// slot's replacement starts only once its old processes are all gone.
// circled runs as a subreaper (not PID 1); its watcher runs
// sh -c 'worker & worker & wait' with workers that trap TERM and need
// 0.5 s to clean up.

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

const graceWorkers = `
[watcher:fam]
cmd = sh -c '{sigtrap} trap {dir}/w 500ms & {sigtrap} trap {dir}/w 500ms & wait'
graceful_timeout = 10
min_uptime = 0
`

// hostProcs lists the live processes whose command line contains sub.
func hostProcs(sub string) []pid1Proc {
	var out []pid1Proc
	for _, p := range pid1AllProcs() {
		if strings.Contains(p.cmdline, sub) && p.state != 'Z' && p.state != 'X' {
			out = append(out, p)
		}
	}
	return out
}

// kinds lists the first word of each line of file name ("ready",
// "signal", "graceful", ...) with the second for "graceful" lines.
func (d *pid1Daemon) kinds(name string) string {
	var out []string
	for _, l := range pid1Grep(d.path(name), "") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == "graceful":
			out = append(out, f[1])
		case len(f) >= 1 && f[0] == "ready":
			out = append(out, "ready")
		}
	}
	return strings.Join(out, " ")
}

func TestGroupRestGetsGraceOnStop(t *testing.T) {
	d := pid1Start(t, pid1Opts{notPID1: true}, "", graceWorkers)
	d.waitLines("w", "ready trap", 2, 10*time.Second)
	for _, p := range hostProcs(d.path("w")) {
		d.trackPid(p.pid)
	}
	if _, err := d.circlectl("stop", "fam"); err != nil {
		t.Fatal(err)
	}
	if got := len(pid1Grep(d.path("w"), "graceful done")); got != 2 {
		t.Fatalf("after stop: %d workers finished their 0.5 s cleanup, want 2 (SIGKILLed with their leader?); w:\n%s", got, strings.Join(pid1Grep(d.path("w"), ""), "\n"))
	}
	if w, err := d.status("fam"); err != nil || w.State != "stopped" {
		t.Fatalf("status after stop: %+v %v", w, err)
	}
	if _, err := d.circlectl("quit"); err != nil {
		t.Fatal(err)
	}
	if code, _ := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("circled exited %d", code)
	}
}

func TestGroupLeaderExitStopsRestBeforeReplacement(t *testing.T) {
	d := pid1Start(t, pid1Opts{notPID1: true}, "", graceWorkers)
	d.waitLines("w", "ready trap", 2, 10*time.Second)
	old := d.genPID(t, "fam")
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ok, desc := testhelper.Wait(10*time.Second, func() (bool, string) {
		w, err := d.status("fam")
		if err != nil || len(w.Processes) != 1 {
			return false, "no status"
		}
		p := w.Processes[0]
		return p.State == "running" && p.PID != old, p.State
	})
	if !ok {
		t.Fatalf("no replacement for %d: %s", old, desc)
	}
	d.waitLines("w", "ready trap", 4, 10*time.Second)
	// The old workers got TERM (not KILL), finished, and only then did
	// the new ones start.
	if got, want := d.kinds("w"), "ready ready start start done done ready ready"; got != want {
		t.Fatalf("worker events %q, want %q; w:\n%s", got, want, strings.Join(pid1Grep(d.path("w"), ""), "\n"))
	}
	if _, err := d.circlectl("quit"); err != nil {
		t.Fatal(err)
	}
	if code, _ := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("circled exited %d", code)
	}
}
