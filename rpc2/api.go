package rpc2

import (
	"context"
	"errors"
	"io"
	"time"
)

// APIVersion is supervisor's XML-RPC API version that rpc2 implements.
const APIVersion = "3.0"

// Group is one watcher: a supervisor process group.
type Group struct {
	Name string
	// State is circle's watcher state: active, stopped, starting,
	// stopping, backoff, flapping or fatal.
	State string
	// NumProcesses is the configured number of processes (slots 1..N).
	NumProcesses int
	Priority     int
	Autostart    bool
	// Error is why the watcher is fatal or backing off.
	Error string
	// Wanted: a command wants the watcher up (started, not stopped
	// since). A slot of a wanted watcher that has no process ended on its
	// own and was left down (EXITED); an unwanted one was stopped
	// (STOPPED).
	Wanted bool
	// Processes are the slots that have or had a process, in any order.
	// Slots 1..NumProcesses missing here are reported as never started.
	// When two entries share a WID (a process draining during a reload)
	// the first one is reported.
	Processes []Process
	// Config is reported by getAllConfigInfo.
	Config Config
}

// Process is one process slot of a watcher.
type Process struct {
	WID int
	// Name is the supervisor process name; empty means the default
	// mapping (the group's name when NumProcesses is 1, else NAME_WID).
	Name string
	PID  int
	// State is circle's process state: starting, running, stopping,
	// backoff or exited.
	State     string
	StartedAt time.Time
	// StoppedAt is when the last process of this slot ended (zero if
	// unknown or never).
	StoppedAt time.Time
	// HasExit says whether LastExit holds an exit. ExitSignal is the
	// signal name ("TERM", "KILL") when a signal ended it.
	HasExit    bool
	ExitCode   int
	ExitSignal string
	// Error is the last spawn error of this slot.
	Error          string
	StdoutLogfile  string
	StderrLogfile  string
	RedirectStderr bool
}

// Config is the part of a watcher's configuration getAllConfigInfo shows.
// Zero values are reported as such.
type Config struct {
	Command      string
	Directory    string
	User         string
	ExitCodes    []int
	StopSignal   int // signal number (15 for TERM)
	StopWaitSecs int
	StartSecs    int
	StartRetries int
	KillAsGroup  bool
}

// Info is the daemon's own state.
type Info struct {
	// Version is reported by getSupervisorVersion (circle's version).
	Version string
	// Identification is supervisord's identifier; "" means "supervisor".
	Identification string
	PID            int
	// ShuttingDown makes getState report SHUTDOWN.
	ShuttingDown bool
}

// Changes is what a config reload did, by watcher name.
type Changes struct {
	Added   []string
	Changed []string
	Removed []string
}

// LogRef names a log: a process's stdout or stderr, or, when Group is "",
// the daemon's own log.
type LogRef struct {
	Group  string
	WID    int
	Stream string // "stdout" or "stderr"; "" for the daemon's log
}

// LogChunk is what ReadLog returns.
type LogChunk struct {
	Data []byte
	// From is the offset of Data's first byte; Size is the log's current
	// end offset (the bytes ever written to it, or a file's size).
	From int64
	Size int64
}

// Backend is what the handler needs from the daemon. Every method may be
// called concurrently. group is a watcher name; a name that is not a
// watcher returns an error wrapping ErrNoSuchGroup.
type Backend interface {
	// Info returns the daemon's version, identification, pid and state.
	Info(ctx context.Context) (Info, error)
	// Groups returns every watcher, in start order (priority order).
	Groups(ctx context.Context) ([]Group, error)
	// Start and Stop act on a whole watcher (wid 0) or one slot (wid > 0;
	// a backend that cannot returns ErrUnsupported). With wait they
	// return once done (started, or stopped).
	Start(ctx context.Context, group string, wid int, wait bool) error
	Stop(ctx context.Context, group string, wid int, wait bool) error
	// Signal sends sig (a name without SIG, "HUP", or a number, "10"),
	// already validated, to the process pid of group.
	Signal(ctx context.Context, group string, pid int, sig string) error
	// ReloadConfig re-reads and applies the config. A config error wraps
	// ErrBadConfig and changes nothing.
	ReloadConfig(ctx context.Context) (Changes, error)
	// ReadLog reads up to n bytes of a log from offset off, or its last n
	// bytes when off < 0. Bytes that are no longer held are skipped
	// (From > off). A log that does not exist wraps ErrNoLog.
	ReadLog(ctx context.Context, ref LogRef, off int64, n int) (LogChunk, error)
	// ClearLog empties a process's logs (both streams; ref.Stream is
	// ignored) or the daemon's log; ErrUnsupported if it cannot.
	ClearLog(ctx context.Context, ref LogRef) error
	// Shutdown stops every watcher and then the daemon; it returns at once.
	Shutdown(ctx context.Context) error
	// Restart restarts the daemon's watchers with a freshly read config
	// (supervisord's restart); ErrUnsupported if it cannot.
	Restart(ctx context.Context) error
}

// LogFollower is implemented by backends that can stream a log as it
// grows; it serves supervisor's GET /logtail/NAME[/stdout|/stderr] and GET
// /mainlogtail (supervisorctl tail -f and maintail -f).
type LogFollower interface {
	// FollowLog writes the last tail bytes of the log to w, then the
	// bytes written to it afterwards, as they arrive, until ctx ends or
	// the log goes away (both return nil). A log that does not exist
	// wraps ErrNoLog. Every Write is flushed to the client.
	FollowLog(ctx context.Context, ref LogRef, tail int, w io.Writer) error
}

// Errors a Backend returns (wrapped); the handler maps them to faults.
var (
	ErrNoSuchGroup  = errors.New("no such group")          // BAD_NAME
	ErrBadConfig    = errors.New("bad config")             // CANT_REREAD
	ErrNoLog        = errors.New("no log")                 // NO_FILE
	ErrShuttingDown = errors.New("shutting down")          // SHUTDOWN_STATE
	ErrUnsupported  = errors.New("not supported")          // FAILED
	ErrSpawn        = errors.New("spawn error")            // SPAWN_ERROR
	ErrNotRunning   = errors.New("not running")            // NOT_RUNNING
	ErrBadSignal    = errors.New("bad signal")             // BAD_SIGNAL
	ErrNotExec      = errors.New("file is not executable") // NOT_EXECUTABLE
)

// Supervisor's process states.
const (
	StateStopped  = 0
	StateStarting = 10
	StateRunning  = 20
	StateBackoff  = 30
	StateStopping = 40
	StateExited   = 100
	StateFatal    = 200
	StateUnknown  = 1000
)

// StateName returns supervisor's name of a process state code.
func StateName(code int) string {
	switch code {
	case StateStopped:
		return "STOPPED"
	case StateStarting:
		return "STARTING"
	case StateRunning:
		return "RUNNING"
	case StateBackoff:
		return "BACKOFF"
	case StateStopping:
		return "STOPPING"
	case StateExited:
		return "EXITED"
	case StateFatal:
		return "FATAL"
	}
	return "UNKNOWN"
}

// Supervisord's own states (getState).
const (
	SupervisorFatal      = 2
	SupervisorRunning    = 1
	SupervisorRestarting = 0
	SupervisorShutdown   = -1
)

// Fault codes.
const (
	FaultUnknownMethod        = 1
	FaultIncorrectParameters  = 2
	FaultBadArguments         = 3
	FaultSignatureUnsupported = 4
	FaultShutdownState        = 6
	FaultBadName              = 10
	FaultBadSignal            = 11
	FaultNoFile               = 20
	FaultNotExecutable        = 21
	FaultFailed               = 30
	FaultAbnormalTermination  = 40
	FaultSpawnError           = 50
	FaultAlreadyStarted       = 60
	FaultNotRunning           = 70
	FaultSuccess              = 80
	FaultAlreadyAdded         = 90
	FaultStillRunning         = 91
	FaultCantReread           = 92
)

var faultNames = map[int]string{
	FaultUnknownMethod: "UNKNOWN_METHOD", FaultIncorrectParameters: "INCORRECT_PARAMETERS",
	FaultBadArguments: "BAD_ARGUMENTS", FaultSignatureUnsupported: "SIGNATURE_UNSUPPORTED",
	FaultShutdownState: "SHUTDOWN_STATE", FaultBadName: "BAD_NAME", FaultBadSignal: "BAD_SIGNAL",
	FaultNoFile: "NO_FILE", FaultNotExecutable: "NOT_EXECUTABLE", FaultFailed: "FAILED",
	FaultAbnormalTermination: "ABNORMAL_TERMINATION", FaultSpawnError: "SPAWN_ERROR",
	FaultAlreadyStarted: "ALREADY_STARTED", FaultNotRunning: "NOT_RUNNING", FaultSuccess: "SUCCESS",
	FaultAlreadyAdded: "ALREADY_ADDED", FaultStillRunning: "STILL_RUNNING", FaultCantReread: "CANT_REREAD",
}

// FaultName returns supervisor's name of a fault code ("UNKNOWN" for others).
func FaultName(code int) string {
	if n, ok := faultNames[code]; ok {
		return n
	}
	return "UNKNOWN"
}

// Fault is an XML-RPC fault. Its String is supervisor's: the code's name,
// then ": " and the detail when there is one ("BAD_NAME: web").
type Fault struct {
	Code   int
	String string
}

func (f *Fault) Error() string { return f.String }

func newFault(code int, detail string) *Fault {
	s := FaultName(code)
	if detail != "" {
		s += ": " + detail
	}
	return &Fault{Code: code, String: s}
}
