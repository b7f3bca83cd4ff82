package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

func intp(n int) *int { return &n }

// circlectl events prints one aligned line per event; names filter;
// --since asks for the replay; --json prints the NDJSON as sent.
func TestEventsCommand(t *testing.T) {
	f := ctltest.NewFake("web", "db")
	sock := startDaemon(t, f)
	t0 := time.Now().Add(-time.Minute)
	f.Emit(ctl.Event{Time: t0, Type: "exit", Watcher: "web", WID: 1, PID: 1234, Code: intp(3)})

	run1 := func(args ...string) (*testhelper.SyncBuffer, context.CancelFunc, <-chan result) {
		ctx, cancel := context.WithCancel(context.Background())
		out, errb := &testhelper.SyncBuffer{}, &testhelper.SyncBuffer{}
		done := make(chan result, 1)
		// The previous run's stream ends on the daemon's side too.
		testhelper.Eventually(t, 30*time.Second, "no follower", func() bool { return f.Subscribers() == 0 })
		go func() {
			code := run(ctx, append([]string{"--socket", sock, "events"}, args...), out, errb)
			done <- result{code, out.String(), errb.String()}
		}()
		testhelper.Eventually(t, 30*time.Second, "the daemon to follow", func() bool { return f.Subscribers() == 1 })
		return out, cancel, done
	}

	out, stop, done := run1("--since", "2m", "w*")
	f.Emit(ctl.Event{Time: t0.Add(time.Second), Type: "exit", Watcher: "db", WID: 1, PID: 99, Signal: "KILL"})
	f.Emit(ctl.Event{Time: t0.Add(2 * time.Second), Type: "spawn", Watcher: "web", WID: 1, PID: 1240})
	f.Emit(ctl.Event{Time: t0.Add(3 * time.Second), Type: "lost", Count: 12})
	testhelper.Eventually(t, 30*time.Second, "three lines", func() bool { return strings.Count(out.String(), "\n") == 3 })
	stop()
	r := <-done
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	want := [][]string{
		{"exit", "web.1", "1234", "code=3"},
		{"spawn", "web.1", "1240"},
		{"lost", "-", "-", "12", "events"},
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2+len(want[i]) || strings.Join(f[2:], " ") != strings.Join(want[i], " ") {
			t.Fatalf("line %d = %q, want date time %v", i, l, want[i])
		}
		// Aligned: the watcher column starts at the same place on every
		// line, after the time (23 characters) and the type.
		if !strings.HasPrefix(l[38:], want[i][1]+" ") || strings.HasSuffix(l, " ") {
			t.Fatalf("line %d not aligned (or ends in a space):\n%s", i, r.stdout)
		}
	}
	calls := f.Calls()
	if got := calls[len(calls)-1]; !strings.HasPrefix(got, `Events ["w*"] `) {
		t.Fatalf("call = %q, want Events with the glob and a since", got)
	}

	out, stop, done = run1("--json")
	f.Emit(ctl.Event{Time: t0, Type: "reload", Summary: &ctl.ReloadSummary{Added: []string{"x"}}})
	testhelper.Eventually(t, 30*time.Second, "a line", func() bool { return strings.Count(out.String(), "\n") == 1 })
	stop()
	r = <-done
	var ev ctl.Event
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev.Type != "reload" || ev.Summary == nil || ev.Summary.Added[0] != "x" {
		t.Fatalf("--json line %q: %v", r.stdout, err)
	}
	if code, _, stderr := circlectl("--socket", sock, "events", "--since", "-1m"); code != exitUsage {
		t.Fatalf("--since -1m: exit %d, %s", code, stderr)
	}
}
