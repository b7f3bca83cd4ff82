//go:build linux

package main

// Black-box test of what a live upgrade resumes for adopted processes
// (issue 19: the new binary takes over "timers still due"): health
// checks, readiness checks in progress, notify sockets with their
// watchdog, and max_age's due time. It reuses the upgrade tests' two
// circled binaries (upgradeBinaries) and daemon (upStartFrom); its own
// child, which speaks sd_notify, is built here from resumeChildSrc.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// resumeChildSrc: `child ping STOP` sends READY=1 and STATUS= to its
// NOTIFY_SOCKET, then WATCHDOG=1 every 100 ms until the file STOP exists,
// then sleeps.
const resumeChildSrc = `package main

import (
	"net"
	"os"
	"time"
)

func main() {
	addr := os.Getenv("NOTIFY_SOCKET")
	if len(addr) > 0 && addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil || len(os.Args) < 3 {
		os.Exit(4)
	}
	c.Write([]byte("READY=1\nSTATUS=pinging"))
	for {
		if _, err := os.Stat(os.Args[2]); err == nil {
			for {
				time.Sleep(time.Hour)
			}
		}
		c.Write([]byte("WATCHDOG=1"))
		time.Sleep(100 * time.Millisecond)
	}
}
`

var (
	resumeOnce     sync.Once
	resumeChild    string
	resumeChildErr error
)

// resumeNotifyChild builds resumeChildSrc once per run.
func resumeNotifyChild(t *testing.T, b upBins) string {
	t.Helper()
	resumeOnce.Do(func() {
		dir := filepath.Join(b.dir, "resume-child")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			resumeChildErr = err
			return
		}
		for name, body := range map[string]string{"main.go": resumeChildSrc, "go.mod": "module resumechild\n\ngo 1.22\n"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				resumeChildErr = err
				return
			}
		}
		out := filepath.Join(b.dir, "resume-notify-child")
		cmd := exec.Command("go", "build", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
		if o, err := cmd.CombinedOutput(); err != nil {
			resumeChildErr = fmt.Errorf("go build %s: %v\n%s", dir, err, o)
			return
		}
		resumeChild = out
	})
	if resumeChildErr != nil {
		t.Fatal(resumeChildErr)
	}
	return resumeChild
}

const (
	resumeWatchdog = 3 * time.Second  // watchdog of [watcher:wd]
	resumeMaxAge   = 40 * time.Second // max_age of [watcher:age]
	resumeBefore   = 20 * time.Second // age's uptime at the upgrade
)

// resumeWatchers: health (health.exec, unhealthy once {dir}/sick
// exists), wd (ready.notify and a watchdog, pinging until {dir}/wd.stop
// exists), checking (not autostarted; ready once {dir}/ready.go exists),
// age (max_age without variance).
const resumeWatchers = `[watcher:health]
cmd = sleep 1000
health.exec = test ! -e {dir}/sick
health.interval = 0.2
health.retries = 2

[watcher:wd]
cmd = {rchild} ping {dir}/wd.stop
ready.notify = true
ready.timeout = 60
watchdog = 3

[watcher:checking]
cmd = sleep 1000
autostart = false
ready.exec = test -e {dir}/ready.go
ready.interval = 0.1
ready.timeout = 600

[watcher:age]
cmd = sleep 1000
min_uptime = 0.5
max_age = 40
max_age_variance = 0
`

// resumeProc is the first process of watcher name.
func resumeProc(t *testing.T, st ctl.Status, name string) ctl.ProcessStatus {
	t.Helper()
	w := upWatcher(t, st, name)
	if len(w.Processes) == 0 {
		return ctl.ProcessStatus{}
	}
	return w.Processes[0]
}

// TestUpgradeResumesChecks: across `circlectl upgrade`, health checks go
// on (an unhealthy process is restarted by the new circled), a process
// still in its readiness checks is handed over (the upgrade is not
// refused) and becomes ready under the new circled, a watchdog whose
// child keeps pinging never fires and fires once it stops (notify socket
// handed over), and max_age keeps its due time.
func TestUpgradeResumesChecks(t *testing.T) {
	b := upgradeBinaries(t)
	rchild := resumeNotifyChild(t, b)
	d := upStartFrom(t, b, b.old, false, strings.ReplaceAll(resumeWatchers, "{rchild}", rchild))

	testhelper.Poll(t, 3*time.Minute, "health, wd and age active, health healthy", func() (bool, string) {
		st := d.status()
		d.track(st)
		h, w, a := upWatcher(t, st, "health"), upWatcher(t, st, "wd"), upWatcher(t, st, "age")
		hp := resumeProc(t, st, "health")
		desc := fmt.Sprintf("health %s (%s), wd %s, age %s", h.State, hp.Health, w.State, a.State)
		return h.State == "active" && w.State == "active" && a.State == "active" && hp.Health == "healthy", desc
	})
	d.mustCtl("start", "--no-wait", "checking")
	var chk0 ctl.ProcessStatus
	testhelper.Poll(t, 3*time.Minute, "checking's process started, not ready", func() (bool, string) {
		st := d.status()
		d.track(st)
		chk0 = resumeProc(t, st, "checking")
		return chk0.PID > 0, fmt.Sprintf("%+v", chk0)
	})
	before := d.status()
	d.track(before)
	health0, wd0, age0 := resumeProc(t, before, "health"), resumeProc(t, before, "wd"), resumeProc(t, before, "age")
	if chk0.Ready || wd0.StatusText != "pinging" {
		t.Fatalf("before the upgrade: checking %+v, wd %+v", chk0, wd0)
	}
	// The upgrade when age has run resumeBefore of its max_age: a max age
	// restarted from the upgrade would be reached resumeBefore later
	// than the one kept.
	ageDue := age0.StartedAt.Add(resumeMaxAge)
	testhelper.Poll(t, 3*time.Minute, "age's uptime to reach the upgrade's moment", func() (bool, string) {
		return time.Since(age0.StartedAt) >= resumeBefore, ""
	})
	if st := d.status(); resumeProc(t, st, "age").PID != age0.PID {
		t.Fatalf("age replaced before the upgrade: %+v", resumeProc(t, st, "age"))
	}

	upAt := time.Now()
	out, errs, code := d.circlectl(3*time.Minute, "upgrade", "--binary", b.new)
	t.Logf("circlectl upgrade: exit %d in %v\nstdout: %s\nstderr: %s", code, time.Since(upAt).Round(time.Millisecond), out, errs)
	if code != 0 {
		t.Fatalf("circlectl upgrade with a process in its readiness checks: exit %d, want 0\nstdout: %s\nstderr: %s\nlog:\n%s", code, out, errs, d.log())
	}
	upDone := time.Now()
	if v, err := d.version(); err != nil || v.Version != upNewVersion {
		t.Fatalf("after the upgrade: version %+v %v, want %s", v, err, upNewVersion)
	}
	after := d.status()
	d.track(after)
	for _, c := range []struct {
		name string
		p    ctl.ProcessStatus
	}{{"health", health0}, {"wd", wd0}, {"checking", chk0}, {"age", age0}} {
		if q := resumeProc(t, after, c.name); q.PID != c.p.PID {
			t.Fatalf("%s after the upgrade: %+v, want pid %d", c.name, q, c.p.PID)
		}
	}
	if q := resumeProc(t, after, "checking"); q.Ready {
		t.Fatalf("checking ready after the upgrade before its condition: %+v", q)
	}
	if q := resumeProc(t, after, "wd"); q.StatusText != "pinging" {
		t.Errorf("wd after the upgrade: STATUS= %q, want %q (the socket's state handed over)", q.StatusText, "pinging")
	}
	if q := resumeProc(t, after, "health"); q.Health != "healthy" {
		t.Errorf("health after the upgrade: %q, want healthy (resumed)", q.Health)
	}

	// Readiness checks in progress: the new circled's prober sees the
	// condition become true.
	if err := os.WriteFile(d.path("ready.go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testhelper.Poll(t, 3*time.Minute, "checking ready under the new circled", func() (bool, string) {
		q := resumeProc(t, d.status(), "checking")
		return q.Ready && q.PID == chk0.PID, fmt.Sprintf("%+v", q)
	})

	// max_age: replaced at its original due time (ageDue), long before a
	// max age restarted from the upgrade would be reached.
	var ageSeen time.Time
	testhelper.Poll(t, 3*time.Minute, "age replaced at its max age", func() (bool, string) {
		q := resumeProc(t, d.status(), "age")
		ageSeen = time.Now()
		return q.PID != age0.PID && q.PID > 0, fmt.Sprintf("%+v", q)
	})
	if restarted := upAt.Add(resumeMaxAge); !ageSeen.Before(restarted) {
		t.Errorf("age replaced at %v: a max age kept is due at %v, one restarted from the upgrade at %v or later", ageSeen.Format(time.RFC3339Nano), ageDue.Format(time.RFC3339Nano), restarted.Format(time.RFC3339Nano))
	}
	if q := resumeProc(t, d.status(), "age"); q.PlannedRestarts < 1 || q.Restarts != 0 {
		t.Errorf("age after its max age: %+v, want a planned restart", q)
	}

	// The watchdog: still pinging more than a period after the upgrade,
	// the child is never failed (its pings reach the new circled).
	testhelper.Poll(t, 3*time.Minute, "a watchdog period and more after the upgrade", func() (bool, string) {
		q := resumeProc(t, d.status(), "wd")
		if q.PID != wd0.PID || q.Restarts != 0 {
			t.Fatalf("wd failed while it pinged: %+v; log:\n%s", q, d.log())
		}
		return time.Since(upDone) > resumeWatchdog+2*time.Second, ""
	})

	// health: unhealthy under the new circled: restarted.
	if err := os.WriteFile(d.path("sick"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testhelper.Poll(t, 3*time.Minute, "health restarted once unhealthy", func() (bool, string) {
		q := resumeProc(t, d.status(), "health")
		return q.PID != health0.PID, fmt.Sprintf("%+v", q)
	})
	resumeLogged(t, d, "health.exec")

	// The watchdog fires once the pings stop.
	if err := os.WriteFile(d.path("wd.stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testhelper.Poll(t, 3*time.Minute, "wd failed by its watchdog", func() (bool, string) {
		q := resumeProc(t, d.status(), "wd")
		return q.PID != wd0.PID, fmt.Sprintf("%+v", q)
	})
	resumeLogged(t, d, "watchdog: no WATCHDOG=1")
}

// resumeLogged waits for circled's log to say a process failed with why
// in the reason.
func resumeLogged(t *testing.T, d *upDaemon, why string) {
	t.Helper()
	testhelper.Poll(t, time.Minute, "circled to log a failure: "+why, func() (bool, string) {
		for _, l := range strings.Split(d.log(), "\n") {
			if strings.Contains(l, "process failed") && strings.Contains(l, why) {
				return true, ""
			}
		}
		return false, "not in the log"
	})
}
