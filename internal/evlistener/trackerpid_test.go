package evlistener

import "testing"

// PID follows Spawned and Exited (the supervisor asks it for the pid to
// hand Stopping when a watcher's stop begins).
func TestTrackerPID(t *testing.T) {
	tr := NewTracker()
	if n := tr.PID("g", "p"); n != 0 {
		t.Errorf("unknown process: pid %d", n)
	}
	tr.Spawned("g", "p", 42)
	if n := tr.PID("g", "p"); n != 42 {
		t.Errorf("after Spawned: pid %d", n)
	}
	tr.Running("g", "p", 42)
	if cs := tr.Stopping("g", "p", tr.PID("g", "p")); len(cs) != 1 || cs[0].To != StateStopping || cs[0].PID != 42 {
		t.Errorf("Stopping with PID: %+v", cs)
	}
	tr.Exited("g", "p", 42, false)
	if n := tr.PID("g", "p"); n != 0 {
		t.Errorf("after Exited: pid %d", n)
	}
	if st := tr.State("g", "p"); st != StateStopped {
		t.Errorf("state %s", st)
	}
	tr.Forget("g", "p")
	if n := tr.PID("g", "p"); n != 0 {
		t.Errorf("after Forget: pid %d", n)
	}
}
