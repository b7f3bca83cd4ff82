package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Status is the document of GET /v1/watchers and `circlectl status --json`.
type Status struct {
	Watchers []WatcherStatus `json:"watchers"`
	// Sockets are every socket the daemon holds ([socket:NAME]), whatever
	// watchers the request names: the list GET /v1/sockets answers. Empty
	// (never null) when it holds none; absent from an older daemon's reply.
	Sockets []Socket `json:"sockets"`
	// LastReloadError is the error of the last failed config reload, cleared
	// by the next successful one.
	LastReloadError string `json:"last_reload_error,omitempty"`
	// Version is the daemon's version (after a live upgrade, the new
	// binary's); absent from an older daemon's reply.
	Version string `json:"version,omitempty"`
}

// WatcherStatus is one watcher in Status.
type WatcherStatus struct {
	Name string `json:"name"`
	// State: active, stopped, starting, stopping, backoff, flapping, fatal.
	State        string          `json:"state"`
	NumProcesses int             `json:"numprocesses"`
	Processes    []ProcessStatus `json:"processes"`
	Priority     int             `json:"priority"`
	// Autostart is the watcher's autostart key: `status --quiet` checks
	// that every autostart watcher is active.
	Autostart bool `json:"autostart"`
	// Error is the reason a watcher is fatal or backing off (a spawn error
	// verbatim, "flapping: 5 exits in 10s", ...).
	Error string `json:"error,omitempty"`
}

// ProcessStatus is one process of a watcher.
type ProcessStatus struct {
	WID int `json:"wid"`
	PID int `json:"pid"`
	// State: starting, running, stopping, backoff, exited.
	State     string    `json:"state"`
	StartedAt time.Time `json:"started_at"`
	// Restarts counts unplanned restarts: the slot's process ended
	// without being asked to (a crash, an exit) and was started again,
	// including after a flapping pause. The status table's RESTARTS.
	Restarts int  `json:"restarts"`
	LastExit Exit `json:"last_exit"`
	// Error is the slot's last failure, verbatim: a spawn error, a failed
	// ready.* or health.* check, a missed watchdog ping, a reload whose
	// new process did not become ready.
	Error        string `json:"error,omitempty"`
	DroppedBytes int64  `json:"dropped_bytes"`
	// PlannedRestarts counts the restarts someone asked for: reload,
	// restart, stop then start, a config change that restarts it.
	PlannedRestarts int `json:"planned_restarts"`
	// Ready: the process passed its ready.* checks (with none, it has
	// run min_uptime). Its state is "starting" until then.
	Ready bool `json:"ready"`
	// Health is its liveness (health.*): "unknown" (no check, or not
	// checked yet), "healthy" or "unhealthy".
	Health string `json:"health"`
	// StatusText is the last STATUS= it sent to its NOTIFY_SOCKET.
	StatusText string `json:"status_text,omitempty"`
	// Descendants is how many processes this one has beyond its main
	// process: the other members of its cgroup where circled uses one per
	// process, else of its process group plus its tree of children. A
	// number that grows shows a leak. Counting reads a file per process,
	// so it is done only on request (?descendants=1, what `circlectl
	// status --json` asks for); otherwise it is NotCounted.
	Descendants int `json:"descendants"`
}

// NotCounted is ProcessStatus.Descendants when the request did not ask
// for descendants.
const NotCounted = -1

// StatusOptions are the parts of a status computed only on request,
// because they cost more than the rest.
type StatusOptions struct {
	// Descendants counts each process's descendants (?descendants=1).
	Descendants bool
}

type statusOptionsKey struct{}

// WithStatusOptions returns ctx carrying opts. The handler passes a
// request's options to Backend.Status this way, and Client.Status sends
// the options of its ctx.
func WithStatusOptions(ctx context.Context, opts StatusOptions) context.Context {
	return context.WithValue(ctx, statusOptionsKey{}, opts)
}

// StatusOptionsFrom returns the options WithStatusOptions put in ctx, or
// none.
func StatusOptionsFrom(ctx context.Context) StatusOptions {
	opts, _ := ctx.Value(statusOptionsKey{}).(StatusOptions)
	return opts
}

// Exit is how a process ended: Code for a normal exit, Signal ("KILL",
// "TERM", ...) when a signal ended it, both zero before any exit.
type Exit struct {
	Code   int    `json:"code"`
	Signal string `json:"signal"`
	// None is true when no process of the slot has exited yet (it never
	// ran, or its first process still runs): Code and Signal mean nothing.
	None bool `json:"none,omitempty"`
	// OOM is true when the kernel's out-of-memory killer ended it (Signal
	// is "KILL"): memory_max, or the host out of memory, killed a process
	// of its limit cgroup. Only for watchers with a memory limit key on
	// Linux.
	OOM bool `json:"oom,omitempty"`
}

// String is the exit as status shows it: "oom", "signal KILL",
// "exit 3", or "-" before any exit.
func (e Exit) String() string {
	switch {
	case e.None:
		return "-"
	case e.OOM:
		return "oom"
	case e.Signal != "":
		return "signal " + e.Signal
	}
	return "exit " + strconv.Itoa(e.Code)
}

// Result is the reply of start, stop, restart, reload, signal, incr, decr.
type Result struct {
	// Watchers the operation applied to, in the order it was applied.
	Watchers []string `json:"watchers"`
	// NumProcesses is set by incr, decr and numprocesses.
	NumProcesses int `json:"numprocesses,omitempty"`
}

// ReloadSummary is the reply of POST /v1/reloadconfig.
type ReloadSummary struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Restarted []string `json:"restarted"`
	Scaled    []string `json:"scaled"`
	// Updated watchers changed only in ways that apply without restarting
	// a process (graceful_timeout, priority, restart policy, ...).
	Updated   []string `json:"updated"`
	Unchanged []string `json:"unchanged"`
	// NeedRestart lists [circled] keys that changed but only apply after
	// circled restarts (socket, ...).
	NeedRestart []string `json:"need_restart,omitempty"`
	// Failed maps each watcher the reload restarted or started that did
	// not come up (a spawn error, fatal, flapping, ...) to the error. It
	// has the new config all the same and is also listed in added or
	// restarted. Omitted when every watcher applied.
	Failed map[string]string `json:"failed,omitempty"`
	// Error is set when the reload did not fully apply: by the daemon
	// when a watcher failed (FailedMessage), and by circlectl's --json
	// when the reload failed as a whole (a bad config, no daemon).
	Error string `json:"error,omitempty"`
}

// FailedMessage says which watchers failed to apply, "" when none did.
func (s ReloadSummary) FailedMessage() string {
	if len(s.Failed) == 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(s.Failed))
	noun := "watchers"
	if len(names) == 1 {
		noun = "watcher"
	}
	return fmt.Sprintf("%d %s failed to apply: %s", len(names), noun, strings.Join(names, ", "))
}

// Stats is the reply of GET /v1/stats.
type Stats struct {
	Watchers []WatcherStats `json:"watchers"`
}

// WatcherStats is one watcher's resource use.
type WatcherStats struct {
	Name      string         `json:"name"`
	Processes []ProcessStats `json:"processes"`
}

// ProcessStats is one process's resource use.
type ProcessStats struct {
	WID int     `json:"wid"`
	PID int     `json:"pid"`
	CPU float64 `json:"cpu"` // percent of one CPU since the previous sample (or since start)
	RSS int64   `json:"rss"` // bytes
}

// Socket is one socket the daemon holds ([socket:NAME] in the config):
// bound by the daemon, open across restarts of the processes that use it.
type Socket struct {
	Name string `json:"name"`
	// Address is the bound address: "127.0.0.1:43121" (with the port
	// the system chose when the config says 0), "[::1]:8080", or a unix
	// socket's path.
	Address string `json:"address"`
	Family  string `json:"family"` // AF_INET, AF_INET6, AF_UNIX
	Type    string `json:"type"`   // SOCK_STREAM, SOCK_DGRAM
	// FD is the daemon's own descriptor number for it (-1 if unknown).
	FD int `json:"fd"`
	// Watchers are the watchers whose processes get it (use_sockets),
	// sorted by name; empty when none does.
	Watchers []SocketUse `json:"watchers"`
}

// SocketUse is one watcher's use of a socket.
type SocketUse struct {
	Watcher string `json:"watcher"`
	// FD is the descriptor number the watcher's processes see (what
	// $(circle.sockets.NAME) expands to).
	FD int `json:"fd"`
}

// Version is the reply of GET /v1/version.
type Version struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	PID       int    `json:"pid"`
	// Upgrades counts the live upgrades (POST /v1/upgrade) this daemon
	// process went through: its pid stays, its binary changes.
	Upgrades int `json:"upgrades,omitempty"`
	// UpgradeError is why the last accepted upgrade's exec failed (the
	// daemon went on with its old binary); "" when it did not.
	UpgradeError string `json:"upgrade_error,omitempty"`
}

// Backend is what the handler needs from the daemon. Every method may be
// called concurrently. names are watcher names or shell globs; an empty
// list means every watcher. A name or glob that matches nothing returns an
// error wrapping ErrNoSuchWatcher.
type Backend interface {
	// Status computes the optional parts StatusOptionsFrom(ctx) asks for.
	// Its Sockets are every socket, as Sockets returns them.
	Status(ctx context.Context, names []string) (Status, error)
	List(ctx context.Context) ([]string, error)
	// Start, Stop, Restart and Reload return when done if wait is true,
	// at once otherwise. Reload is graceful: new processes up, then the
	// old ones stopped.
	Start(ctx context.Context, names []string, wait bool) (Result, error)
	Stop(ctx context.Context, names []string, wait bool) (Result, error)
	Restart(ctx context.Context, names []string, wait bool) (Result, error)
	Reload(ctx context.Context, names []string, wait bool) (Result, error)
	// ReloadConfig re-reads the config; a config error returns an error
	// wrapping ErrBadConfig and changes nothing.
	ReloadConfig(ctx context.Context) (ReloadSummary, error)
	// Signal sends sig (a name like "HUP"/"SIGHUP" or a number) to every
	// process of name, or only to pid when pid != 0; children also
	// signals each process's whole group.
	Signal(ctx context.Context, name, sig string, pid int, children bool) (Result, error)
	// Incr adds n processes (n may be negative for decr) and returns the
	// new count.
	Incr(ctx context.Context, name string, n int) (Result, error)
	NumProcesses(ctx context.Context, name string) (Result, error)
	Stats(ctx context.Context, names []string) (Stats, error)
	// Quit stops every watcher and then the daemon. With wait it returns
	// once every watcher has stopped (the daemon exits right after).
	Quit(ctx context.Context, wait bool) error
	Version(ctx context.Context) (Version, error)
	// Sockets lists the sockets the daemon holds, sorted by name.
	Sockets(ctx context.Context) ([]Socket, error)
	// Logs writes the last req.Lines lines of a watcher's captured output
	// (from the daemon's in-memory ring, whatever the stream class) to w,
	// then, with req.Follow, new lines as they arrive, until ctx ends, the
	// watcher is removed or the daemon stops (all three return nil). Each
	// line is "NAME.WID | text\n". w is flushed to the client after every
	// Write. A Write of no bytes sends the reply's headers without data:
	// call it once name is resolved, before waiting for lines to follow.
	Logs(ctx context.Context, name string, req LogsRequest, w io.Writer) error
	// Reopen reopens every log file (after an external logrotate).
	Reopen(ctx context.Context) error
}

// LogsRequest selects what Backend.Logs sends.
type LogsRequest struct {
	Lines  int    `json:"lines"`  // last lines to send first; 0 = none
	Follow bool   `json:"follow"` // then keep sending new lines
	Stream string `json:"stream"` // "stdout", "stderr", or "" for both
}

// Errors a Backend returns (wrapped) and the client returns (wrapped) so
// callers can branch with errors.Is. The handler maps them to HTTP
// statuses and the client maps them back; circlectl maps them to exit
// codes (ErrNoSuchWatcher 3, ErrUnreachable 4, others 1).
var (
	ErrNoSuchWatcher = errors.New("no such watcher")
	ErrBadConfig     = errors.New("bad config")
	ErrBadRequest    = errors.New("bad request")
	ErrUnreachable   = errors.New("daemon not reachable")
	ErrShuttingDown  = errors.New("daemon is shutting down")
)
