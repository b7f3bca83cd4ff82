package evlistener

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The payloads are supervisord 4's (supervisor/events.py), byte for byte.
func TestStateChangePayloads(t *testing.T) {
	for _, c := range []struct {
		sc   StateChange
		name string
		want string
	}{
		{StateChange{Process: "web_1", Group: "web", From: StateRunning, To: StateExited, PID: 4321, Expected: false},
			"PROCESS_STATE_EXITED", "processname:web_1 groupname:web from_state:RUNNING expected:0 pid:4321"},
		{StateChange{Process: "web", Group: "web", From: StateRunning, To: StateExited, PID: 7, Expected: true},
			"PROCESS_STATE_EXITED", "processname:web groupname:web from_state:RUNNING expected:1 pid:7"},
		{StateChange{Process: "cat", Group: "cat", From: StateStopped, To: StateStarting, Tries: 0},
			"PROCESS_STATE_STARTING", "processname:cat groupname:cat from_state:STOPPED tries:0"},
		{StateChange{Process: "cat", Group: "cat", From: StateStarting, To: StateBackoff, Tries: 1},
			"PROCESS_STATE_BACKOFF", "processname:cat groupname:cat from_state:STARTING tries:1"},
		{StateChange{Process: "cat", Group: "cat", From: StateStarting, To: StateRunning, PID: 99},
			"PROCESS_STATE_RUNNING", "processname:cat groupname:cat from_state:STARTING pid:99"},
		{StateChange{Process: "cat", Group: "cat", From: StateRunning, To: StateStopping, PID: 99},
			"PROCESS_STATE_STOPPING", "processname:cat groupname:cat from_state:RUNNING pid:99"},
		{StateChange{Process: "cat", Group: "cat", From: StateStopping, To: StateStopped, PID: 99},
			"PROCESS_STATE_STOPPED", "processname:cat groupname:cat from_state:STOPPING pid:99"},
		{StateChange{Process: "cat", Group: "cat", From: StateBackoff, To: StateFatal, PID: 5, Tries: 3},
			"PROCESS_STATE_FATAL", "processname:cat groupname:cat from_state:BACKOFF"},
		{StateChange{Process: "cat", Group: "cat", From: StateRunning, To: "LOST"},
			"PROCESS_STATE_UNKNOWN", "processname:cat groupname:cat from_state:RUNNING"},
	} {
		ev := c.sc.Event()
		if ev.Name != c.name || ev.Payload != c.want {
			t.Errorf("%+v.Event() = %q %q, want %q %q", c.sc, ev.Name, ev.Payload, c.name, c.want)
		}
	}
}

func TestOtherPayloads(t *testing.T) {
	when := time.Unix(1700000003, 0)
	for _, c := range []struct{ got, want Event }{
		{Tick(5, when), Event{"TICK_5", "when:1700000000"}},
		{Tick(60, when), Event{"TICK_60", "when:1699999980"}},
		{Tick(3600, when), Event{"TICK_3600", "when:1699999200"}},
		{ProcessLog("web", "web", 12, "stdout", []byte("hi\nthere")), Event{"PROCESS_LOG_STDOUT", "processname:web groupname:web pid:12 channel:stdout\nhi\nthere"}},
		{ProcessLog("web", "g", 12, "stderr", []byte{'a', 0xff}), Event{"PROCESS_LOG_STDERR", "processname:web groupname:g pid:12 channel:stderr\na\uFFFD"}},
		{ProcessCommunication("web", "web", 3, "stdout", []byte("x")), Event{"PROCESS_COMMUNICATION_STDOUT", "processname:web groupname:web pid:3\nx"}},
		{RemoteCommunication("t", "d"), Event{"REMOTE_COMMUNICATION", "type:t\nd"}},
		{SupervisorRunning(), Event{"SUPERVISOR_STATE_CHANGE_RUNNING", ""}},
		{SupervisorStopping(), Event{"SUPERVISOR_STATE_CHANGE_STOPPING", ""}},
		{ProcessGroupAdded("g"), Event{"PROCESS_GROUP_ADDED", "groupname:g\n"}},
		{ProcessGroupRemoved("g"), Event{"PROCESS_GROUP_REMOVED", "groupname:g\n"}},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
		if !ValidEvent(c.got.Name) {
			t.Errorf("%s is not a valid event name", c.got.Name)
		}
	}
}

func TestSubscriptions(t *testing.T) {
	for _, c := range []struct {
		sub, name string
		want      bool
	}{
		{"PROCESS_STATE", "PROCESS_STATE_EXITED", true},
		{"PROCESS_STATE", "PROCESS_STATE_UNKNOWN", true},
		{"PROCESS_STATE_EXITED", "PROCESS_STATE_EXITED", true},
		{"PROCESS_STATE_EXITED", "PROCESS_STATE_FATAL", false},
		{"PROCESS_STATE", "TICK_5", false},
		{"EVENT", "TICK_5", true},
		{"EVENT", "REMOTE_COMMUNICATION", true},
		{"TICK", "TICK_3600", true},
		{"TICK_60", "TICK_5", false},
		{"PROCESS_LOG", "PROCESS_LOG_STDERR", true},
		{"PROCESS_COMMUNICATION", "PROCESS_COMMUNICATION_STDOUT", true},
		{"PROCESS_COMMUNICATION", "PROCESS_LOG_STDOUT", false},
		{"SUPERVISOR_STATE_CHANGE", "SUPERVISOR_STATE_CHANGE_STOPPING", true},
		{"PROCESS_GROUP", "PROCESS_GROUP_ADDED", true},
		{"REMOTE_COMMUNICATION", "REMOTE_COMMUNICATION", true},
		{"PROCESS_STATE", "PROCESS_STATE", true},
	} {
		if got := Matches(c.sub, c.name); got != c.want {
			t.Errorf("Matches(%s, %s) = %v, want %v", c.sub, c.name, got, c.want)
		}
	}
}

func TestParseEvents(t *testing.T) {
	got, err := ParseEvents(" process_state , TICK_60,PROCESS_STATE,")
	if err != nil || strings.Join(got, ",") != "PROCESS_STATE,TICK_60" {
		t.Errorf("ParseEvents = %v, %v", got, err)
	}
	if _, err := ParseEvents("PROCESS_STATE, TICK_7"); err == nil || !strings.Contains(err.Error(), "TICK_7") {
		t.Errorf("unknown type: err = %v, want it named", err)
	}
	if _, err := ParseEvents(" , "); err == nil {
		t.Error("empty events: no error")
	}
	if n := len(EventNames()); n != 27 {
		t.Errorf("EventNames has %d names, want supervisord's 27", n)
	}
}

// The package is a leaf the supervisor drives: it imports no other
// circle package.
func TestLeaf(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("SKIP: the go command is not on PATH: cannot list imports")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/circle-supervisor/circle/") && !strings.HasSuffix(p, "/internal/evlistener") {
			t.Errorf("evlistener imports %s", p)
		}
	}
}
