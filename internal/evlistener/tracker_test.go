package evlistener

import (
	"strings"
	"testing"
)

// Each history is what supervisord 4.2.5's process.py notifies for the
// same sequence (change_state, with backoff counted on BACKOFF and reset
// on RUNNING and give_up).
func TestTracker(t *testing.T) {
	type step struct {
		do   func(tr *Tracker) []StateChange
		want []string // "NAME payload"
	}
	const g, p = "web", "web_1"
	spawned := func(pid int) func(*Tracker) []StateChange {
		return func(tr *Tracker) []StateChange { return tr.Spawned(g, p, pid) }
	}
	running := func(pid int) func(*Tracker) []StateChange {
		return func(tr *Tracker) []StateChange { return tr.Running(g, p, pid) }
	}
	stopping := func(pid int) func(*Tracker) []StateChange {
		return func(tr *Tracker) []StateChange { return tr.Stopping(g, p, pid) }
	}
	exited := func(pid int, expected bool) func(*Tracker) []StateChange {
		return func(tr *Tracker) []StateChange { return tr.Exited(g, p, pid, expected) }
	}
	gaveUp := func(tr *Tracker) []StateChange { return tr.GaveUp(g, p) }
	spawnFailed := func(tr *Tracker) []StateChange { return tr.SpawnFailed(g, p) }
	pre := "processname:web_1 groupname:web "
	for name, steps := range map[string][]step{
		"run, exit, restart, stop": {
			{spawned(100), []string{"PROCESS_STATE_STARTING " + pre + "from_state:STOPPED tries:0"}},
			{running(100), []string{"PROCESS_STATE_RUNNING " + pre + "from_state:STARTING pid:100"}},
			{exited(100, false), []string{"PROCESS_STATE_EXITED " + pre + "from_state:RUNNING expected:0 pid:100"}},
			{spawned(101), []string{"PROCESS_STATE_STARTING " + pre + "from_state:EXITED tries:0"}},
			{running(101), []string{"PROCESS_STATE_RUNNING " + pre + "from_state:STARTING pid:101"}},
			{stopping(101), []string{"PROCESS_STATE_STOPPING " + pre + "from_state:RUNNING pid:101"}},
			{stopping(101), nil}, // the SIGKILL after stopwaitsecs: no new state
			{exited(101, false), []string{"PROCESS_STATE_STOPPED " + pre + "from_state:STOPPING pid:101"}},
			{spawned(102), []string{"PROCESS_STATE_STARTING " + pre + "from_state:STOPPED tries:0"}},
			{running(102), []string{"PROCESS_STATE_RUNNING " + pre + "from_state:STARTING pid:102"}},
			{exited(102, true), []string{"PROCESS_STATE_EXITED " + pre + "from_state:RUNNING expected:1 pid:102"}},
		},
		"crash loop, give up, start again": {
			{spawned(1), []string{"PROCESS_STATE_STARTING " + pre + "from_state:STOPPED tries:0"}},
			{exited(1, false), []string{"PROCESS_STATE_BACKOFF " + pre + "from_state:STARTING tries:1"}},
			{spawned(2), []string{"PROCESS_STATE_STARTING " + pre + "from_state:BACKOFF tries:1"}},
			{exited(2, true), []string{"PROCESS_STATE_BACKOFF " + pre + "from_state:STARTING tries:2"}},
			{spawnFailed, []string{
				"PROCESS_STATE_STARTING " + pre + "from_state:BACKOFF tries:2",
				"PROCESS_STATE_BACKOFF " + pre + "from_state:STARTING tries:3"}},
			{gaveUp, []string{"PROCESS_STATE_FATAL " + pre + "from_state:BACKOFF"}},
			{spawned(3), []string{"PROCESS_STATE_STARTING " + pre + "from_state:FATAL tries:0"}},
			{running(3), []string{"PROCESS_STATE_RUNNING " + pre + "from_state:STARTING pid:3"}},
		},
		"stop while in backoff, stop while starting": {
			{spawned(1), []string{"PROCESS_STATE_STARTING " + pre + "from_state:STOPPED tries:0"}},
			{exited(1, false), []string{"PROCESS_STATE_BACKOFF " + pre + "from_state:STARTING tries:1"}},
			{stopping(0), []string{"PROCESS_STATE_STOPPED " + pre + "from_state:BACKOFF pid:0"}},
			{spawned(2), []string{"PROCESS_STATE_STARTING " + pre + "from_state:STOPPED tries:1"}},
			{stopping(2), []string{"PROCESS_STATE_STOPPING " + pre + "from_state:STARTING pid:2"}},
			{exited(2, false), []string{"PROCESS_STATE_STOPPED " + pre + "from_state:STOPPING pid:2"}},
		},
		"other pids are not this process": {
			{spawned(10), []string{"PROCESS_STATE_STARTING " + pre + "from_state:STOPPED tries:0"}},
			{running(9), nil},
			{exited(9, false), nil},
			{stopping(9), nil},
			{running(10), []string{"PROCESS_STATE_RUNNING " + pre + "from_state:STARTING pid:10"}},
			{exited(10, false), []string{"PROCESS_STATE_EXITED " + pre + "from_state:RUNNING expected:0 pid:10"}},
			{exited(10, false), nil},
		},
	} {
		tr := NewTracker()
		for i, s := range steps {
			var got []string
			for _, c := range s.do(tr) {
				ev := c.Event()
				got = append(got, ev.Name+" "+ev.Payload)
			}
			if strings.Join(got, "\n") != strings.Join(s.want, "\n") {
				t.Errorf("%s, step %d:\n got %q\nwant %q", name, i, got, s.want)
			}
		}
	}
	tr := NewTracker()
	tr.Spawned("a", "a", 5)
	if s := tr.State("a", "a"); s != StateStarting {
		t.Errorf("State = %s, want STARTING", s)
	}
	tr.Forget("a", "a")
	if s := tr.State("a", "a"); s != StateStopped {
		t.Errorf("after Forget: %s, want STOPPED", s)
	}
}
