//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// Live upgrade with a supervisord event listener (issue 19: every
// watcher is handed over, its children see nothing).

// evlListener speaks supervisord's listener protocol (standard library
// only) and records, in $RECORD: "start<TAB>PID" once, each event as
// "ev<TAB>PID<TAB>header<TAB>payload", any signal it gets as
// "sig<TAB>PID<TAB>NAME" (SIGTERM ends it) and the end of its input as
// "eof<TAB>PID". It answers RESULT 2\nOK in two writes a moment apart,
// so an upgrade may well find an answer half read.
const evlListener = `import os, signal, sys, time
rec = open(os.environ["RECORD"], "a", encoding="utf-8")
def w(s):
    rec.write(s + "\n")
    rec.flush()
def on_signal(n, frame):
    w("sig\t%d\t%s" % (os.getpid(), signal.Signals(n).name))
    if n == signal.SIGTERM:
        os._exit(0) # a stop (the test's end)
for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2,
          signal.SIGPIPE, signal.SIGQUIT, signal.SIGALRM):
    signal.signal(s, on_signal)
w("start\t%d" % os.getpid())
while True:
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        w("eof\t%d" % os.getpid())
        sys.exit(0)
    h = dict(x.split(":", 1) for x in line.split())
    payload = sys.stdin.read(int(h["len"]))
    w("ev\t%d\t%s\t%s" % (os.getpid(), line.rstrip("\n"), payload.replace("\n", "\\n")))
    sys.stdout.write("RESULT 2\nO")
    sys.stdout.flush()
    time.sleep(0.005)
    sys.stdout.write("K")
    sys.stdout.flush()
`

// evlRec is one line of an evlListener's record.
type evlRec struct {
	kind, pid string
	header    map[string]string
	payload   map[string]string
	raw       string
}

func evlRead(t *testing.T, path string) []evlRec {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []evlRec
	for l := range strings.Lines(string(b)) {
		if !strings.HasSuffix(l, "\n") {
			break // being written
		}
		f := strings.Split(strings.TrimSuffix(l, "\n"), "\t")
		r := evlRec{kind: f[0], raw: strings.TrimSpace(l)}
		if len(f) > 1 {
			r.pid = f[1]
		}
		if r.kind == "ev" && len(f) == 4 {
			r.header, r.payload = evlFields(f[2]), evlFields(strings.ReplaceAll(f[3], `\n`, " "))
		}
		out = append(out, r)
	}
	return out
}

func evlFields(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, ":")
		m[k] = v
	}
	return m
}

func evlEvents(recs []evlRec) []evlRec {
	var out []evlRec
	for _, r := range recs {
		if r.kind == "ev" {
			out = append(out, r)
		}
	}
	return out
}

// TestUpgradeEventListener: a listener subscribed to PROCESS_STATE
// (and SUPERVISOR_STATE_CHANGE, PROCESS_GROUP: not sent again by the
// new binary) while a program crashes over and over (events flowing) and another
// waits for a file to exit. An upgrade to a binary that reads state
// format 1 only is refused (nothing changes); `circlectl upgrade` to
// the new binary succeeds, the listener
// keeps its pid and sees no signal and no end of input, the serials
// (global and pool) go on without a gap or a repeat, and the exit after
// the upgrade of a process RUNNING before it is EXITED from RUNNING.
func TestUpgradeEventListener(t *testing.T) {
	b := upgradeBinaries(t)
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIP: python3 is not installed: the event listener of this test is a Python script")
	}
	scriptDir := t.TempDir()
	script := filepath.Join(scriptDir, "listener.py")
	if err := os.WriteFile(script, []byte(evlListener), 0o644); err != nil {
		t.Fatal(err)
	}
	d := upStart(t, b, false, `[watcher:rec]
cmd = `+py+` `+script+`
eventlistener.events = PROCESS_STATE,SUPERVISOR_STATE_CHANGE,PROCESS_GROUP
eventlistener.buffer_size = 1000
copy_env = true
min_uptime = 0

[env:rec]
RECORD = {dir}/rec

[watcher:flap]
cmd = sh -c 'sleep 0.1; exit 1'
min_uptime = 0
check_flapping = false
backoff_max = 0.2

[watcher:wait]
cmd = sh -c 'while [ ! -e {dir}/wait.go ]; do sleep 0.02; done; exit 3'
min_uptime = 0.2
check_flapping = false
`)
	rec := d.path("rec")
	// wait is RUNNING (its pid is the one handed over), and flap's
	// events flow.
	var waitPID string
	testhelper.Poll(t, 3*time.Minute, "wait RUNNING and flap's events flowing", func() (bool, string) {
		st := d.status()
		d.track(st)
		evs := evlEvents(evlRead(t, rec))
		flaps := 0
		waitPID = ""
		for _, e := range evs {
			switch e.payload["processname"] {
			case "flap":
				if e.header["eventname"] == "PROCESS_STATE_EXITED" {
					flaps++
				}
			case "wait":
				if e.header["eventname"] == "PROCESS_STATE_RUNNING" {
					waitPID = e.payload["pid"]
				}
			}
		}
		return waitPID != "" && flaps >= 3, fmt.Sprintf("wait RUNNING pid %q, %d flap exits, %d events", waitPID, flaps, len(evs))
	})
	recs := evlRead(t, rec)
	if len(recs) == 0 || recs[0].kind != "start" {
		t.Fatalf("record %v", recs)
	}
	listenerPID := recs[0].pid
	if hp, _ := strconv.Atoi(listenerPID); !upAlive(hp) {
		t.Fatalf("the listener %s is not running", listenerPID)
	}
	st0 := upWatcher(t, d.status(), "rec")
	if len(st0.Processes) != 1 || strconv.Itoa(st0.Processes[0].PID) != listenerPID {
		t.Fatalf("rec's processes %+v, the listener says pid %s", st0.Processes, listenerPID)
	}

	// A binary that reads format 1 only (the circled before listeners
	// were handed over) is refused: it would leave them unfed.
	format1 := filepath.Join(scriptDir, "circled-format1")
	upScript(t, format1, `[ "$1" = __upgrade-check ] || exit 2
echo '{"version":"0.0.0-format1","commit":"old","go_version":"go1","os":"linux","arch":"`+runtime.GOARCH+`","state_formats":[1]}'`)
	out, errs, code := d.circlectl(3*time.Minute, "upgrade", "--binary", format1)
	t.Logf("circlectl upgrade --binary %s: exit %d\nstdout: %s\nstderr: %s", format1, code, out, errs)
	if code != 1 || !strings.Contains(errs, "format 2") {
		t.Fatalf("an upgrade to a binary reading format 1 only: exit %d, stderr %q: want a refusal naming format 2", code, errs)
	}
	if v, err := d.version(); err != nil || v.Version != upOldVersion || upUpgrades(t, d) != 0 {
		t.Fatalf("after a refused upgrade: version %q (%v); log:\n%s", v.Version, err, d.log())
	}

	out, errs, code = d.circlectl(3*time.Minute, "upgrade", "--binary", b.new)
	t.Logf("circlectl upgrade: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	upSkipUnimplemented(t, errs)
	if code != 0 {
		t.Fatalf("circlectl upgrade: exit %d\nstdout: %s\nstderr: %s\nlog:\n%s", code, out, errs, d.log())
	}
	if d.ended() {
		t.Fatalf("circled exited during the upgrade; log:\n%s", d.log())
	}
	if v, err := d.version(); err != nil || v.Version != upNewVersion {
		t.Fatalf("after the upgrade: version %q (%v), want %q; log:\n%s", v.Version, err, upNewVersion, d.log())
	}
	atUpgrade := len(evlEvents(evlRead(t, rec)))

	// The waiting process, adopted, ends now: EXITED from RUNNING (the
	// tracker's state went across), expected:0 (exit 3).
	if err := os.WriteFile(d.path("wait.go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testhelper.Poll(t, 3*time.Minute, "wait's exit told after the upgrade, and flap's events going on", func() (bool, string) {
		evs := evlEvents(evlRead(t, rec))
		exited, flaps := false, 0
		for _, e := range evs[atUpgrade:] {
			if e.payload["processname"] == "wait" && e.payload["pid"] == waitPID && e.header["eventname"] == "PROCESS_STATE_EXITED" {
				exited = true
				if e.payload["from_state"] != "RUNNING" || e.payload["expected"] != "0" {
					t.Errorf("wait's exit after the upgrade: %s, want from_state:RUNNING expected:0", e.raw)
				}
			}
			if e.payload["processname"] == "flap" && e.header["eventname"] == "PROCESS_STATE_EXITED" {
				flaps++
			}
		}
		return exited && flaps >= 3, fmt.Sprintf("wait exited %v, %d flap exits, %d events after the upgrade", exited, flaps, len(evs)-atUpgrade)
	})

	recs = evlRead(t, rec)
	starts := 0
	for _, r := range recs {
		switch r.kind {
		case "start":
			starts++
		case "sig", "eof":
			t.Errorf("the listener got %s", r.raw)
		}
		if r.pid != listenerPID {
			t.Errorf("a record of another listener process: %s", r.raw)
		}
	}
	if starts != 1 {
		t.Errorf("the listener started %d times", starts)
	}
	if st := upWatcher(t, d.status(), "rec"); len(st.Processes) != 1 || strconv.Itoa(st.Processes[0].PID) != listenerPID {
		t.Errorf("rec's processes after the upgrade %+v, want the listener %s", st.Processes, listenerPID)
	}
	// Serials: every event once, in order, across the upgrade.
	evs := evlEvents(recs)
	for i, e := range evs {
		if e.header["serial"] != strconv.Itoa(i) || e.header["poolserial"] != strconv.Itoa(i) {
			t.Errorf("event %d has serial %s, poolserial %s: %s", i, e.header["serial"], e.header["poolserial"], e.raw)
		}
	}
	// The upgrade is no new start: SUPERVISOR_STATE_CHANGE_RUNNING and
	// each group's PROCESS_GROUP_ADDED once (before it).
	once := map[string]int{}
	for _, e := range evs {
		switch n := e.header["eventname"]; n {
		case "SUPERVISOR_STATE_CHANGE_RUNNING":
			once[n]++
		case "PROCESS_GROUP_ADDED":
			once[n+" "+e.payload["groupname"]]++
		}
	}
	// (A pool sees the groups made after it: rec's own, wait's.)
	if once["SUPERVISOR_STATE_CHANGE_RUNNING"] != 1 || once["PROCESS_GROUP_ADDED rec"] != 1 || once["PROCESS_GROUP_ADDED wait"] != 1 || len(once) > 4 {
		t.Errorf("startup events %v: want SUPERVISOR_STATE_CHANGE_RUNNING and each PROCESS_GROUP_ADDED once", once)
	}
	for k, n := range once {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
	// Each process's events follow supervisord's state machine: a
	// from_state is the state its previous event went to.
	last := map[string]string{}
	for _, e := range evs {
		if !strings.HasPrefix(e.header["eventname"], "PROCESS_STATE_") {
			continue
		}
		p := e.payload["processname"]
		to := strings.TrimPrefix(e.header["eventname"], "PROCESS_STATE_")
		if prev, ok := last[p]; ok && e.payload["from_state"] != prev {
			t.Errorf("%s: from_state %s after %s: %s", p, e.payload["from_state"], prev, e.raw)
		}
		last[p] = to
	}
	t.Logf("%d events, %d before the upgrade", len(evs), atUpgrade)
}
