package watcher

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// WIDToken in Argv, Env values and Dir is replaced by the process slot
// number (1..N) at spawn time, shaped by Spec.WIDOffset and WIDWidth.
const WIDToken = "$(circle.wid)"

// Spec is everything the watcher needs to run its processes.
type Spec struct {
	Name string
	// Argv is the command line; Argv[0] is looked up in the child's PATH
	// when it has no slash.
	Argv []string
	// Env is the complete child environment ("K=V"); CIRCLED_WID is added.
	Env []string
	Dir string
	// UID, GID: nil = unchanged. When either is set, the process's
	// supplementary groups are exactly Groups (empty = none), never
	// circled's; a UID needs a GID. supervisor/config resolves all three
	// from the user database.
	UID, GID *int
	Groups   []int
	// User is the account UID belongs to, for messages (nil = none or
	// no passwd entry). Its variables are already in Env.
	User *User
	// Umask -1 = inherit.
	Umask   int
	Rlimits []Rlimit

	StopSignal string // "TERM", "INT", ... or a number as text
	// StopChildren sends StopSignal to the whole process group; otherwise
	// to the main process only (its group still gets SIGKILL at the end).
	StopChildren    bool
	GracefulTimeout time.Duration

	NumProcesses int
	WarmupDelay  time.Duration // between spawns of this watcher's processes
	Policy       Policy

	// Stdout and Stderr receive the processes' output; nil discards it
	// (the child gets /dev/null).
	Stdout, Stderr Sink

	// WIDOffset and WIDWidth shape what WIDToken becomes (FormatWID):
	// wid+WIDOffset, zero-padded to WIDWidth digits. CIRCLED_WID stays
	// the bare wid.
	WIDOffset, WIDWidth int

	// Ready are the readiness checks: a process is "starting" until they
	// all pass (with none, until it has run Policy.MinUptime).
	Ready ReadySpec
	// Health are the liveness checks, run once a process is ready.
	Health HealthSpec
	// Watchdog is the sd_notify watchdog period (needs Ready.Notify): no
	// WATCHDOG=1 within it restarts the process as a failure. 0 = off.
	Watchdog time.Duration
	// ReloadSignal makes Reload send this signal to each process instead
	// of replacing it ("" = replace).
	ReloadSignal string
	// LastOutput returns the last lines (at most n) that slot wid's
	// processes wrote, for the errors of Start, Restart and Reload; nil =
	// none.
	LastOutput func(wid, n int) []string
	// RuntimeDir is where per-process notify sockets are made (a
	// directory only circled's user may write; created 0711 if missing).
	// "" = a private directory under the system's temporary directory.
	RuntimeDir string

	// Files are given to every process as descriptors 3, 4, ... in this
	// order (the sockets circled holds). With ListenNames set (one name
	// per file), the child also gets systemd's socket-activation
	// variables: LISTEN_FDS, LISTEN_FDNAMES (the names joined by ':') and
	// LISTEN_PID (its own pid, set in the child by the trampoline).
	Files       []*os.File
	ListenNames []string
	// Join, when set, gives the extra cgroup directories (resource-limit
	// cgroups: v1 controllers, or a v2 limit cgroup) slot wid's process
	// joins before it execs, through the trampoline, so nothing it forks
	// escapes them. done is called once that process has ended.
	Join func(wid int) (dirs []string, done func(), err error)
	// Attach, when set, is given the cgroup v2 of slot wid's process (its
	// own containment cgroup, SetCgroups) before the process starts, to
	// put resource limits on it (cgroup v2: a process is in one cgroup,
	// so the limits go there instead of Join's). done is called once the
	// process has ended, as Join's. A process without a cgroup of its own
	// is not started (its limits could not hold it).
	Attach func(wid int, dir string) (done func(), err error)
	// Job, when set, is called on Windows with the Job Object (a
	// windows.Handle) that will hold slot wid's process, before the
	// process runs its first instruction: resource limits
	// (limits.ApplyJob). An error fails the spawn. Unused elsewhere.
	Job func(wid int, job uintptr) error
	// OOMKilled, when set, is asked (off the owner, before Join's done)
	// whether slot wid's process, ended by SIGKILL, was killed by the
	// kernel's out-of-memory killer; ExitStatus.OOM records the answer.
	OOMKilled func(wid int) bool
	// MaxAge > 0 replaces a process gracefully once it has run MaxAge plus
	// a random extra up to MaxAgeVariance: one slot at a time, and with
	// readiness the new process is ready before the old one stops.
	MaxAge, MaxAgeVariance time.Duration
	// Hook, when set, is called at each HookPoint with what applies; it
	// runs outside the watcher's owner and never blocks other watchers. A
	// non-nil error from a Before* point vetoes the action.
	Hook func(ctx context.Context, ev HookEvent) error
	// Stdin, when set, is called before each spawn of slot wid; the file
	// it returns becomes the process's standard input and is closed in
	// circled after the spawn (supervisord's event listeners).
	Stdin func(wid int) (*os.File, error)
}

// HookPoint names a moment of a watcher's life (circus's hook names).
type HookPoint string

const (
	BeforeStart  HookPoint = "before_start"
	AfterStart   HookPoint = "after_start"
	BeforeStop   HookPoint = "before_stop"
	AfterStop    HookPoint = "after_stop"
	BeforeSpawn  HookPoint = "before_spawn"
	AfterSpawn   HookPoint = "after_spawn"
	BeforeSignal HookPoint = "before_signal"
	AfterSignal  HookPoint = "after_signal"
	OnExit       HookPoint = "on_exit"
	OnFatal      HookPoint = "on_fatal"
)

// HookEvent is what a hook is told: WID and PID are 0 and Exit is nil
// where they do not apply.
type HookEvent struct {
	Point   HookPoint
	Watcher string
	WID     int
	PID     int
	Signal  string
	Exit    *ExitStatus
}

// ReadySpec are the ready.* checks. TCP, HTTP and Exec may contain
// WIDToken; Exec runs through /bin/sh -c (cmd /c on Windows).
type ReadySpec struct {
	TCP, HTTP, Exec, Log string
	Notify               bool
	Timeout, Interval    time.Duration // 0: the defaults of internal/ready
}

// Any reports whether a readiness check is set.
func (r ReadySpec) Any() bool {
	return r.TCP != "" || r.HTTP != "" || r.Exec != "" || r.Log != "" || r.Notify
}

// HealthSpec are the health.* checks.
type HealthSpec struct {
	TCP, HTTP, Exec   string
	Interval, Timeout time.Duration
	Retries           int
}

// Any reports whether a liveness check is set.
func (h HealthSpec) Any() bool { return h.TCP != "" || h.HTTP != "" || h.Exec != "" }

// FormatWID is what WIDToken becomes for slot wid: wid+offset,
// zero-padded to width digits.
func FormatWID(wid, offset, width int) string {
	if offset == 0 && width <= 1 {
		return strconv.Itoa(wid)
	}
	return fmt.Sprintf("%0*d", width, wid+offset)
}

// User is the passwd entry a process runs as.
type User struct {
	Name, Home, Shell string
}

// Rlimit is a resource limit by name ("nofile") with soft = hard = Value.
type Rlimit struct {
	Name  string
	Value uint64
}

// Sink makes the writer that receives one process's stream. The writer
// is used by one goroutine at a time; Close is called at EOF.
type Sink interface {
	Open(wid, pid int) io.WriteCloser
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	Code      int    // exit code, or -1 when a signal ended it
	Signal    string // "KILL", "TERM", ... or "" for a normal exit
	SignalNum int
	Time      time.Time
	// OOM: the out-of-memory killer ended it (Signal is "KILL";
	// Spec.OOMKilled said so).
	OOM bool
}

// ExitCode is the shell's view of the status: the code, or 128+N for a
// process killed by signal N.
func (e ExitStatus) ExitCode() int {
	if e.Signal != "" {
		return 128 + e.SignalNum
	}
	return e.Code
}

// Spawner starts processes and reports their ends. On Unix the
// supervisor's reaper implements it (it is the only caller of wait4);
// DirectSpawner is for platforms and tests without a reaper.
type Spawner interface {
	// Start starts cmd with cmd.Start, returns its pid and arranges for
	// onExit to be called exactly once, from another goroutine, when the
	// process has ended and been reaped. onExit must not block for long.
	// The caller must not read cmd.Process after Start: the spawner owns it.
	Start(cmd *exec.Cmd, onExit func(ExitStatus)) (pid int, err error)
}
