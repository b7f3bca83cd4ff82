// Package evlistener speaks supervisord's event listener protocol, so
// listeners written for supervisord (superlance's crashmail, memmon,
// httpok, or anything built on supervisor.childutils) run unchanged
// under circled's [eventlistener:x] sections.
//
// A Bus holds one Pool per [eventlistener:x]. The supervisor publishes
// supervisord-style events (Event, built with StateChange, Tick,
// ProcessLog, ...) on the Bus; each Pool keeps those its `events` key
// subscribes to, up to buffer_size (the oldest is dropped past that),
// and hands each to one of its listeners that said READY. A listener's
// standard input comes from Pool.Stdin and its standard output goes to
// Pool.Stdout (a Sink, the same shape as watcher.Sink), where the
// protocol is read: READY, then RESULT n and n bytes: OK acknowledges
// the event, anything else rejects it and it is sent again. A listener
// that dies with an event in flight gives the event back to its pool.
// The Bus makes TICK_* events itself, with a timer only while a pool
// subscribes to them.
//
// Tracker turns what circled sees of a process (spawned, up, stopping,
// ended, given up) into the PROCESS_STATE_* changes supervisord would
// notify, and Bus.LogEvents makes PROCESS_LOG_* events from a process's
// output. Example shows the wiring; supervisor/evlisteners.go is
// circled's (the supervisor's events told to a Tracker, a pool per
// [eventlistener:x] watcher).
//
// The package is a leaf: it imports no other circle package.
package evlistener

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one supervisord event: its type name (PROCESS_STATE_EXITED,
// TICK_60, ...) and its payload, the text a listener reads after the
// header line.
type Event struct {
	Name    string
	Payload string
}

// The abstract event types: a pool subscribed to one of them receives
// every concrete type below it (EVENT: every type).
const (
	EventAll                   = "EVENT"
	EventProcessState          = "PROCESS_STATE"
	EventProcessCommunication  = "PROCESS_COMMUNICATION"
	EventProcessLog            = "PROCESS_LOG"
	EventSupervisorStateChange = "SUPERVISOR_STATE_CHANGE"
	EventTick                  = "TICK"
	EventProcessGroup          = "PROCESS_GROUP"
)

// The concrete event types and the abstract type each belongs to
// (supervisor/events.py's EventTypes). REMOTE_COMMUNICATION has no
// parent but EVENT. PROCESS_LOG is both a parent and the name
// supervisord gives no event of its own.
var parents = map[string]string{
	"PROCESS_STATE_STOPPED":            EventProcessState,
	"PROCESS_STATE_EXITED":             EventProcessState,
	"PROCESS_STATE_STARTING":           EventProcessState,
	"PROCESS_STATE_STOPPING":           EventProcessState,
	"PROCESS_STATE_BACKOFF":            EventProcessState,
	"PROCESS_STATE_FATAL":              EventProcessState,
	"PROCESS_STATE_RUNNING":            EventProcessState,
	"PROCESS_STATE_UNKNOWN":            EventProcessState,
	"PROCESS_COMMUNICATION_STDOUT":     EventProcessCommunication,
	"PROCESS_COMMUNICATION_STDERR":     EventProcessCommunication,
	"PROCESS_LOG_STDOUT":               EventProcessLog,
	"PROCESS_LOG_STDERR":               EventProcessLog,
	"REMOTE_COMMUNICATION":             "",
	"SUPERVISOR_STATE_CHANGE_RUNNING":  EventSupervisorStateChange,
	"SUPERVISOR_STATE_CHANGE_STOPPING": EventSupervisorStateChange,
	"TICK_5":                           EventTick,
	"TICK_60":                          EventTick,
	"TICK_3600":                        EventTick,
	"PROCESS_GROUP_ADDED":              EventProcessGroup,
	"PROCESS_GROUP_REMOVED":            EventProcessGroup,
}

var abstract = []string{EventAll, EventProcessState, EventProcessCommunication,
	EventProcessLog, EventSupervisorStateChange, EventTick, EventProcessGroup}

// EventNames lists every name an `events` key may hold, sorted.
func EventNames() []string {
	out := slices.Clone(abstract)
	for n := range parents {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ValidEvent reports whether name (upper case) is a supervisord event
// type an `events` key may name.
func ValidEvent(name string) bool {
	_, ok := parents[name]
	return ok || slices.Contains(abstract, name)
}

// ParseEvents reads an `events` value as supervisord does: names
// separated by commas (spaces around them ignored), case-insensitive,
// duplicates merged. It fails on an empty list and names the first
// unknown type.
func ParseEvents(value string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(value, ",") {
		n := strings.ToUpper(strings.TrimSpace(f))
		if n == "" {
			continue
		}
		if !ValidEvent(n) {
			return nil, fmt.Errorf("unknown event type %s (one of %s)", n, strings.Join(EventNames(), ", "))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no event type: an event listener needs at least one (e.g. PROCESS_STATE)")
	}
	return out, nil
}

// Matches reports whether a subscription to sub receives events named
// name: the same name, its abstract parent, or EVENT.
func Matches(sub, name string) bool {
	if sub == name || sub == EventAll {
		return true
	}
	p, ok := parents[name]
	return ok && p != "" && p == sub
}

// The supervisor process state names (rpc2.StateName's names) that
// follow PROCESS_STATE_ in an event name.
const (
	StateStopped  = "STOPPED"
	StateStarting = "STARTING"
	StateRunning  = "RUNNING"
	StateBackoff  = "BACKOFF"
	StateStopping = "STOPPING"
	StateExited   = "EXITED"
	StateFatal    = "FATAL"
	StateUnknown  = "UNKNOWN"
)

// StateChange is one process's move from one supervisor state to
// another: what a PROCESS_STATE_<To> event says.
type StateChange struct {
	Process string // the process name (supervisor's: name, or name_N with numprocs)
	Group   string // its group (the program or [group:x] name)
	From    string // the state it left (StateRunning, ...)
	To      string // the state it entered
	// PID is the process's pid (EXITED, STOPPED: the pid that ended;
	// 0 when there was none).
	PID int
	// Expected (EXITED only): the exit code was one of exitcodes.
	Expected bool
	// Tries (STARTING and BACKOFF only): supervisord's backoff count,
	// the starts that failed in a row: 0 on a first STARTING, 1 on the
	// first BACKOFF, 1 on the STARTING after it, and so on.
	Tries int
}

// Event renders the change as supervisord does: `processname:x
// groupname:y from_state:S` and then `tries:N` (STARTING, BACKOFF),
// `expected:0|1 pid:N` (EXITED) or `pid:N` (RUNNING, STOPPING, STOPPED).
// A To that is no supervisor state becomes PROCESS_STATE_UNKNOWN.
func (c StateChange) Event() Event {
	to := c.To
	if _, ok := parents["PROCESS_STATE_"+to]; !ok {
		to = StateUnknown
	}
	var b strings.Builder
	b.WriteString("processname:" + c.Process + " groupname:" + c.Group + " from_state:" + c.From)
	switch to {
	case StateStarting, StateBackoff:
		b.WriteString(" tries:" + strconv.Itoa(c.Tries))
	case StateExited:
		exp := "0"
		if c.Expected {
			exp = "1"
		}
		b.WriteString(" expected:" + exp + " pid:" + strconv.Itoa(c.PID))
	case StateRunning, StateStopping, StateStopped:
		b.WriteString(" pid:" + strconv.Itoa(c.PID))
	}
	return Event{Name: "PROCESS_STATE_" + to, Payload: b.String()}
}

// TickPeriods are the TICK_N periods, in seconds, in the order
// supervisord sends them when several fall due at once.
var TickPeriods = []int{5, 60, 3600}

// Tick is the TICK_<period> event for the period boundary at or before
// when: `when:EPOCH`, EPOCH a multiple of period.
func Tick(period int, when time.Time) Event {
	return Event{Name: "TICK_" + strconv.Itoa(period), Payload: "when:" + strconv.FormatInt(timeslice(period, when), 10)}
}

func timeslice(period int, t time.Time) int64 {
	s := t.Unix()
	return s - s%int64(period)
}

// ProcessLog is a PROCESS_LOG_STDOUT or PROCESS_LOG_STDERR event
// (channel "stdout" or "stderr"): a process wrote data. Bytes that are
// not UTF-8 become U+FFFD (supervisord sends `Undecodable: b'...'`
// instead of the data).
func ProcessLog(process, group string, pid int, channel string, data []byte) Event {
	return Event{
		Name: "PROCESS_LOG_" + strings.ToUpper(channel),
		Payload: "processname:" + process + " groupname:" + group + " pid:" + strconv.Itoa(pid) +
			" channel:" + channel + "\n" + strings.ToValidUTF8(string(data), "\uFFFD"),
	}
}

// ProcessCommunication is a PROCESS_COMMUNICATION_STDOUT or _STDERR
// event: what a process wrote between <!--XSUPERVISOR:BEGIN--> and
// <!--XSUPERVISOR:END-->.
func ProcessCommunication(process, group string, pid int, channel string, data []byte) Event {
	return Event{
		Name: "PROCESS_COMMUNICATION_" + strings.ToUpper(channel),
		Payload: "processname:" + process + " groupname:" + group + " pid:" + strconv.Itoa(pid) +
			"\n" + strings.ToValidUTF8(string(data), "\uFFFD"),
	}
}

// RemoteCommunication is the event supervisor.sendRemoteCommEvent sends.
func RemoteCommunication(typ, data string) Event {
	return Event{Name: "REMOTE_COMMUNICATION", Payload: "type:" + typ + "\n" + data}
}

// SupervisorRunning and SupervisorStopping are supervisord's own state
// changes (empty payloads).
func SupervisorRunning() Event  { return Event{Name: "SUPERVISOR_STATE_CHANGE_RUNNING"} }
func SupervisorStopping() Event { return Event{Name: "SUPERVISOR_STATE_CHANGE_STOPPING"} }

// ProcessGroupAdded and ProcessGroupRemoved follow a group's addition or
// removal (reload, addProcessGroup, removeProcessGroup).
func ProcessGroupAdded(group string) Event {
	return Event{Name: "PROCESS_GROUP_ADDED", Payload: "groupname:" + group + "\n"}
}
func ProcessGroupRemoved(group string) Event {
	return Event{Name: "PROCESS_GROUP_REMOVED", Payload: "groupname:" + group + "\n"}
}

// payloadLen is the header's len: supervisord counts the characters of
// the payload (a Python str), not its bytes, and listeners built on
// supervisor.childutils read that many characters from a text stdin.
func payloadLen(p string) int { return utf8.RuneCountInString(p) }
