package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
)

// autostartFake is a ctltest.Fake whose status marks the named watchers
// autostart = true, as circled's does for watchers configured so.
type autostartFake struct {
	*ctltest.Fake
	autostart map[string]bool
}

func (f autostartFake) Status(ctx context.Context, names []string) (ctl.Status, error) {
	st, err := f.Fake.Status(ctx, names)
	for i := range st.Watchers {
		st.Watchers[i].Autostart = f.autostart[st.Watchers[i].Name]
	}
	return st, err
}

// TestStatusQuiet: exit 0 when every autostart watcher is active; a
// watcher with autostart = false may be stopped, but none may be failing.
func TestStatusQuiet(t *testing.T) {
	tests := []struct {
		watchers  []string // ctltest.NewFake's "name:state"
		autostart []string
		args      []string
		code      int
	}{
		{[]string{"web", "worker"}, []string{"web", "worker"}, nil, 0},
		{[]string{"web", "oneshot:stopped"}, []string{"web"}, nil, 0},
		{[]string{"web", "oneshot:stopped"}, []string{"web", "oneshot"}, nil, 1},
		{[]string{"web:starting"}, []string{"web"}, nil, 1},
		{[]string{"web:stopping"}, []string{"web"}, nil, 1},
		{[]string{"web", "manual:fatal"}, []string{"web"}, nil, 1},
		{[]string{"web", "manual:backoff"}, []string{"web"}, nil, 1},
		{[]string{"web", "manual:flapping"}, []string{"web"}, nil, 1},
		{[]string{"web:backoff"}, []string{"web"}, nil, 1},
		{[]string{"web:starting", "manual:starting"}, nil, nil, 0},
		{nil, nil, nil, 0},
		// Only the watchers named count.
		{[]string{"web", "db:stopped"}, []string{"web", "db"}, []string{"web"}, 0},
		{[]string{"web", "db:stopped"}, []string{"web", "db"}, []string{"d*"}, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.watchers, tt.autostart, tt.args), func(t *testing.T) {
			f := autostartFake{ctltest.NewFake(tt.watchers...), map[string]bool{}}
			for _, n := range tt.autostart {
				f.autostart[n] = true
			}
			sock := startDaemon(t, f)
			args := append([]string{"--socket", sock, "status", "--quiet"}, tt.args...)
			code, stdout, stderr := circlectl(args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if stdout != "" || stderr != "" {
				t.Errorf("--quiet printed stdout %q, stderr %q", stdout, stderr)
			}
		})
	}
}

// LAST-EXIT: a slot whose start failed shows it, one that never ended
// shows "-", never a made-up "exit 0" (issue 20 §2).
func TestLastExit(t *testing.T) {
	tests := []struct {
		name string
		ps   []ctl.ProcessStatus
		want string
	}{
		{"none", nil, "-"},
		{"first process runs", []ctl.ProcessStatus{{PID: 7, State: "running"}}, "-"},
		{"never ran: fatal after spawn errors", []ctl.ProcessStatus{{State: "exited", Error: "fork/exec /nope: no such file or directory"}}, "spawn failed"},
		{"spawn error, backing off", []ctl.ProcessStatus{{State: "backoff", Error: "fork/exec /nope: no such file or directory"}}, "spawn failed"},
		{"ran, then failed to respawn", []ctl.ProcessStatus{{State: "backoff", Restarts: 2, LastExit: ctl.Exit{Code: 3}, Error: "fork: resource temporarily unavailable"}}, "spawn failed"},
		{"exited 0 once (respawn = false)", []ctl.ProcessStatus{{State: "exited", LastExit: ctl.Exit{Code: 0}}}, "exit 0"},
		{"crashed", []ctl.ProcessStatus{{PID: 8, State: "running", Restarts: 1, LastExit: ctl.Exit{Signal: "SEGV"}}}, "signal SEGV"},
		{"replaced, never exited (daemon says none)", []ctl.ProcessStatus{{PID: 9, State: "running", Restarts: 1, LastExit: ctl.Exit{None: true}}}, "-"},
		{"the slot that restarted most", []ctl.ProcessStatus{
			{PID: 10, State: "running", Restarts: 1, LastExit: ctl.Exit{Code: 1}},
			{PID: 11, State: "running", Restarts: 4, LastExit: ctl.Exit{Code: 2}},
		}, "exit 2"},
	}
	for _, tt := range tests {
		if got := lastExit(tt.ps); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// shapedFake is a ctltest.Fake whose status is rewritten per watcher, to
// show states the fake cannot reach itself.
type shapedFake struct {
	*ctltest.Fake
	shape func(*ctl.WatcherStatus)
}

func (f shapedFake) Status(ctx context.Context, names []string) (ctl.Status, error) {
	st, err := f.Fake.Status(ctx, names)
	for i := range st.Watchers {
		f.shape(&st.Watchers[i])
	}
	return st, err
}

// An active watcher scaled to zero shows as idle, and --quiet fails for
// an autostart one but not for a watcher with autostart = false (issue 20
// §4); a watcher that never ran shows "spawn failed" (§2).
func TestStatusIdleAndNeverRan(t *testing.T) {
	f := shapedFake{ctltest.NewFake("web", "app", "manual", "bad:fatal"), func(w *ctl.WatcherStatus) {
		switch w.Name {
		case "app", "manual":
			w.NumProcesses, w.Processes = 0, []ctl.ProcessStatus{}
		case "bad":
			w.Error = "spawn failed 1 times: fork/exec /nope: no such file or directory"
			w.Processes = []ctl.ProcessStatus{{WID: 1, State: "exited", Error: "fork/exec /nope: no such file or directory"}}
		}
		w.Autostart = w.Name != "manual"
	}}
	sock := startDaemon(t, f)
	code, out, _ := circlectl("--socket", sock, "status")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, want := range [][]string{
		{"NAME", "STATE", "PIDS", "UPTIME", "RESTARTS", "LAST-EXIT", "ERROR"},
		{"web", "active", "1000"},
		{"app", "idle", "-", "-", "0", "-", "-"},
		{"manual", "idle", "-", "-", "0", "-", "-"},
		{"bad", "fatal", "-", "-", "0", "spawn", "failed", "spawn", "failed", "1", "times:"},
	} {
		if i >= len(lines) {
			t.Fatalf("missing line %d:\n%s", i, out)
		}
		if fields := strings.Fields(lines[i]); len(fields) < len(want) || !slices.Equal(fields[:len(want)], want) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], want)
		}
	}
	for _, tt := range []struct {
		names []string
		code  int
	}{{[]string{"web"}, 0}, {[]string{"app"}, 1}, {[]string{"manual"}, 0}, {[]string{"web", "manual"}, 0}} {
		code, stdout, stderr := circlectl(append([]string{"--socket", sock, "status", "--quiet"}, tt.names...)...)
		if code != tt.code || stdout != "" || stderr != "" {
			t.Errorf("status --quiet %v: exit %d (stdout %q, stderr %q), want %d", tt.names, code, stdout, stderr, tt.code)
		}
	}
	// --json keeps the daemon's state: idle is the table's word only.
	if _, out, _ := circlectl("--socket", sock, "status", "--json", "app"); !strings.Contains(out, `"state":"active","numprocesses":0`) {
		t.Errorf("--json: %s", out)
	}
}
