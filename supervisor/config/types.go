package config

import (
	"os"
	"strconv"
	"time"
)

// Config is a fully resolved and validated configuration: every include
// followed, every substitution done (except the per-process $(circle.wid),
// normalised to WIDToken), every default applied.
type Config struct {
	// File is the absolute path of the main file.
	File string
	// Files lists every file that was read, main file first, then the
	// included files sorted by path. A reload compares their bytes.
	Files []string
	// WatchDirs are the directories whose changes may change the config:
	// the main file's directory and every include_dir / include glob's
	// directory that exists (absolute, deduplicated, sorted).
	WatchDirs []string

	Daemon Daemon
	// Watchers sorted by descending priority, then by name.
	Watchers []*Watcher
	// Warnings are non-fatal findings (circus features we do not
	// implement, and so on), each naming file, line and key.
	Warnings []Warning
	// Sockets are the [socket:NAME] sections, sorted by name: circled
	// binds them (internal/sockets) and hands them to the watchers that
	// use them (Watcher.Sockets).
	Sockets []Socket
	// EnvFiles are the env_file files of every watcher, absolute, sorted,
	// without repeats, optional ones that are missing included. They are
	// in Files too (after the config files), so that a reload, and the
	// config watch, see their changes; their directories are in WatchDirs.
	EnvFiles []string
	// Supervisord holds the daemon settings that only matter to
	// supervisord's tools (XML-RPC); zero unless set by a supervisord
	// file or by the [circled] keys circled convert writes.
	Supervisord SupervisordSettings
}

// SupervisordSettings are supervisord's daemon settings that circled's
// own [circled] section does not have (see SupervisordKeys).
type SupervisordSettings struct {
	// Identifier is supervisord's identifier (XML-RPC
	// supervisor.getIdentification); "" = unset ("supervisor" for a
	// supervisord file).
	Identifier string
	// MinFDs and MinProcs are supervisord's minfds and minprocs: at
	// startup circled should raise its RLIMIT_NOFILE (RLIMIT_NPROC) soft
	// limit, and the hard one when it must and may, to at least this,
	// and refuse to start when it cannot (as supervisord does).
	// 0 = unset.
	MinFDs   int
	MinProcs int
	// InetHTTP is supervisord's [inet_http_server]: where the XML-RPC
	// listener listens over TCP, with HTTP basic auth. Addr "" = no TCP
	// listener.
	InetHTTP InetHTTP
}

// Daemon is the [circled] (alias [circus]) section.
type Daemon struct {
	Socket          string      // absolute, "" = use the default rule
	SocketMode      os.FileMode // default 0600
	Pidfile         string      // absolute or ""
	LogLevel        string      // debug|info|warn|error; default info
	LogFormat       string      // text|json; default text
	Logfile         string      // absolute or ""; "" = stderr
	LogfileMode     os.FileMode // logfile_mode: the logfile's permissions (default 0640)
	LogfileMaxBytes int64       // rotate the logfile at this size (0 = default 100 MiB)
	LogfileBackups  int         // rotated logfiles kept (0 = default 5)
	Umask           int         // -1 = unset
	GracefulTimeout time.Duration
	WarmupDelay     time.Duration // delay between starting watchers
	WatchConfig     bool          // default true
	ServiceName     string        // system service name ("" = circled)
	// MetricsListen is host:port of the TCP listener for GET /metrics
	// ("" = /metrics only on the control socket); MetricsWebConfig is
	// the Prometheus web configuration file (TLS, basic auth) it uses.
	MetricsListen    string
	MetricsWebConfig string
}

// InetHTTP is a TCP listener for the XML-RPC API (supervisord's
// [inet_http_server]).
type InetHTTP struct {
	// Addr is host:port for net.Listen("tcp", Addr); an empty host
	// (":9001") means every interface.
	Addr string
	// Username and Password are required unless Addr's host is a
	// loopback address (127.0.0.0/8, ::1 or localhost). Password is as
	// written: plain text, or "{SHA}" followed by the hex SHA-1 of the
	// password (supervisord's form).
	Username string
	Password string
}

// Watcher is one [watcher:NAME] section, resolved.
type Watcher struct {
	Name string
	File string // file that defined it
	Line int    // line of its section header

	// Argv is the command line to exec. With shell=true it is
	// ["/bin/sh", "-c", cmd+" "+args]. It may contain WIDToken.
	Argv []string
	// Env is the child's environment, sorted by key: circled's whole
	// environment when copy_env, else just PATH when copy_path, then the
	// matching [env] / [env:PATTERNS] sections, then CIRCLED_WATCHER.
	// With uid, HOME, USER, LOGNAME and SHELL are the user's (absent for a
	// uid without passwd entry) unless an env section sets them.
	// Values may contain WIDToken. CIRCLED_WID is added per process.
	Env        []string
	WorkingDir string // absolute or "" (= circled's cwd)
	// UID is the uid key, resolved from a name or a number; nil = unset
	// (the processes run as circled's user).
	UID *int
	// GID is the processes' primary group: the gid key, else the passwd
	// group of UID. It is nil only when neither uid nor gid is set.
	GID *int
	// Groups is the complete supplementary group list of the processes
	// whenever UID or GID is set, sorted, never circled's own groups:
	//   - uid with a passwd entry: GID plus every group that lists the
	//     user (initgroups); a gid key replaces the passwd group;
	//   - numeric uid without a passwd entry (gid is then required): none;
	//   - gid alone: just GID.
	// nil when neither is set (the processes keep circled's groups).
	Groups []int
	// User is the passwd entry of UID; nil when uid is unset or is a
	// number without an entry. Its home, name and shell are in Env as
	// HOME, USER, LOGNAME and SHELL unless an env section sets them.
	User *User
	// GroupNames names GID and Groups where the group database has a name
	// (for circled check; Equal ignores it).
	GroupNames map[int]string
	Umask      int // -1 = unset (inherit [circled] umask)
	Rlimits    []Rlimit

	Shell        bool
	CopyEnv      bool
	CopyPath     bool
	StopSignal   string // canonical name without SIG prefix: "TERM", "INT", "QUIT", or a number as text
	StopChildren bool   // default true

	GracefulTimeout time.Duration // default [circled] graceful_timeout, else 30s
	NumProcesses    int           // default 1
	Respawn         bool          // RespawnMode != "never" (respawn key)
	MaxRetry        int           // default 5; -1 = forever
	// MaxFailedStarts (max_failed_starts, default 0 = no limit): failed
	// starts in a row (each ended before min_uptime or before ready, or
	// failed to spawn) after which the process is left down (fatal when
	// no other process of the watcher runs). A supervisord program gets
	// startretries + 1.
	MaxFailedStarts int
	Autostart       bool          // default true
	Priority        int           // default 0
	WarmupDelay     time.Duration // between this watcher's process spawns
	Singleton       bool          // numprocesses forced to 1
	Critical        bool          // default false (PID 1 issue)
	MinUptime       time.Duration // default 1s
	BackoffMax      time.Duration // default 10s

	Flapping Flapping

	Stdout Stream
	Stderr Stream
	// RedirectStderr merges stderr into the stdout stream.
	RedirectStderr bool

	// ExitCodes are the expected exit codes (exitcodes, alias
	// exit_codes; supervisord's exitcodes): [0] when RespawnMode is
	// "on-failure" and the key is unset (a supervisord program: always
	// [0] unless set), else nil when unset.
	ExitCodes []int
	// WIDOffset and WIDWidth shape what WIDToken becomes: the decimal
	// wid+WIDOffset, zero-padded to WIDWidth digits. supervisord's
	// %(process_num)0Nd with numprocs_start S gives offset S-1, width N.
	// Both 0 (circus) is the plain wid.
	WIDOffset int
	WIDWidth  int
	// ProcessNames are the names of the processes of wid 1..len, for
	// display (supervisord's expanded process_name); nil = unset.
	ProcessNames []string

	// RespawnMode is the respawn key (issue 15): "always" (respawn =
	// true, the default), "on-failure" (an exit with a code in ExitCodes,
	// default [0], is not restarted; a signal death is a failure unless
	// circled sent it; supervisord's autorestart = unexpected), or
	// "never" (respawn = false). Respawn mirrors RespawnMode != "never".
	RespawnMode string
	// Ready holds the ready.* checks: a process is ready when every set
	// check passes; with none set, once it has run MinUptime.
	Ready ReadyChecks
	// Watchdog is the sd_notify watchdog period (watchdog key, needs
	// ready.notify): no WATCHDOG=1 within it restarts the process as a
	// failure. 0 = off.
	Watchdog time.Duration
	// Health holds the health.* liveness checks.
	Health HealthChecks
	// ReloadSignal makes reload send this signal to each process instead
	// of replacing it (reload_signal; circus's send_hup = true is HUP).
	// "" = replace.
	ReloadSignal string
	// UseSockets is use_sockets: the processes inherit every socket of
	// the config (Config.Sockets).
	UseSockets bool
	// Sockets are the sockets the processes get as descriptors 3, 4, ...
	// in this order: every socket of the config (sorted by name) with
	// use_sockets, else those that cmd or args name with
	// $(circle.sockets.NAME) (sorted by name); nil = none. Argv holds
	// SocketToken(name) for each such reference: the supervisor's spec
	// mapping turns it into the descriptor number (3 + index here).
	Sockets []Socket
	// EnvFiles are the env_file files, in the order written; their
	// variables are already in Env (after copy_env/copy_path, before the
	// env sections).
	EnvFiles []EnvFile
	// MaxAge > 0 (max_age) replaces a process gracefully once it has run
	// MaxAge plus a random extra up to MaxAgeVariance (max_age_variance).
	MaxAge, MaxAgeVariance time.Duration
	// Limits are the cgroup resource limits of each process slot.
	Limits Limits
	// MaxMemory > 0 (max_memory, bytes) restarts a process gracefully
	// when it and its descendants use more than this; MaxMemoryInterval
	// (max_memory_interval) is the sampling period where cgroup memory
	// events are not available.
	MaxMemory         int64
	MaxMemoryInterval time.Duration
	// Hooks are the hooks.* commands.
	Hooks Hooks
	// EventListener is set for a supervisord [eventlistener:x] section
	// (or the eventlistener.* keys circled convert writes): the process
	// speaks supervisor's event listener protocol on stdin/stdout. nil =
	// an ordinary watcher.
	EventListener *EventListenerConf
	// DependsOn is depends_on, in the order written; nil = none. Load
	// checked that every Name is a watcher of the config, that the graph
	// has no cycle, and that a "completed" dependency has RespawnMode
	// "never".
	DependsOn []Dependency
}

// ReadyChecks are the ready.* keys. TCP, HTTP and Exec may contain
// WIDToken.
type ReadyChecks struct {
	TCP      string        // HOST:PORT a connect must reach
	HTTP     string        // URL a GET must answer 2xx or 3xx
	Exec     string        // command line that must exit 0 (watcher's env, user, dir)
	Log      string        // regexp a line of stdout or stderr must match
	Notify   bool          // sd_notify READY=1 on the process's own NOTIFY_SOCKET
	Timeout  time.Duration // default 60s: not ready by then is a failed start
	Interval time.Duration // default 0.2s between tcp/http/exec attempts
}

// Any reports whether a readiness check is set.
func (r ReadyChecks) Any() bool {
	return r.TCP != "" || r.HTTP != "" || r.Exec != "" || r.Log != "" || r.Notify
}

// HealthChecks are the health.* keys (liveness). TCP, HTTP and Exec may
// contain WIDToken.
type HealthChecks struct {
	TCP      string
	HTTP     string
	Exec     string
	Interval time.Duration // default 10s
	Timeout  time.Duration // default 5s per attempt
	Retries  int           // default 3 failures in a row: unhealthy
}

// Any reports whether a liveness check is set.
func (h HealthChecks) Any() bool { return h.TCP != "" || h.HTTP != "" || h.Exec != "" }

// Dependency is one depends_on entry: the watcher Name must reach
// Condition before this one starts.
type Dependency struct {
	Name      string
	Condition string // DependStarted, DependReady (the default) or DependCompleted
}

// Flapping is the flapping.* keys.
type Flapping struct {
	// Attempts is flapping.attempts, default 5; 0 when circus's
	// check_flapping = false turns flapping detection off (watcher.Policy
	// never flaps with Attempts <= 0).
	Attempts int
	Window   time.Duration // default 10s
	RetryIn  time.Duration // default 30s
	MaxRetry int           // default 5; -1 = forever
}

// Rlimit is one rlimit_NAME key. Name is lower case without the prefix
// ("nofile"); Value is the limit, or RlimInfinity for "unlimited".
type Rlimit struct {
	Name  string
	Value uint64
}

// RlimInfinity stands for "unlimited" / "infinity".
const RlimInfinity = ^uint64(0)

// Stream is stdout_stream.* / stderr_stream.*. Class "stdout" means
// circled's own output: its stdout for Watcher.Stdout, its stderr for
// Watcher.Stderr (circus's StdoutStream). stderr_stream.class = stdout,
// spelled exactly so, sets Watcher.RedirectStderr instead.
type Stream struct {
	Class          string // "stdout" (default, StdoutStream), "file" (FileStream), "timed" (TimedRotatingFileStream), "null"
	Filename       string // absolute; may contain WIDToken
	MaxBytes       int64
	BackupCount    int
	MaxAge         int // days
	Compress       bool
	RotateWhen     string
	RotateInterval int
	TimeFormat     string
	// FileMode is file_mode: the permissions of the log file and its
	// backups (octal, at most 0777; default 0640). The logs package
	// applies it when it creates a file, and keeps it across rotation.
	FileMode os.FileMode
}

// WIDToken is what every spelling of $(circle.wid) / $(circus.wid) /
// $WID is normalised to; the watcher replaces it with the process slot.
const WIDToken = "$(circle.wid)"

// Warning is a non-fatal finding.
type Warning struct {
	File string
	Line int
	Key  string
	Msg  string
}

// String is "file:line: key: message"; the line and key are left out
// when unknown (a warning about a whole file).
func (w Warning) String() string {
	s := w.File
	if w.Line > 0 {
		s += ":" + strconv.Itoa(w.Line)
	}
	if w.Key != "" {
		s += ": " + w.Key
	}
	return s + ": " + w.Msg
}

// Error is a configuration error. It names the file, line and key.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // section or key; "" when the error is about a file
	Msg  string
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

// Options are the inputs of Load besides the files.
type Options struct {
	// Environ is circled's environment (os.Environ() in production).
	Environ []string
	// LookupUser finds a user by login name and LookupUserID by uid;
	// "not found" is user.UnknownUserError / user.UnknownUserIdError.
	// nil = the system's user database (os/user, and /etc/passwd for the
	// shell).
	LookupUser   func(name string) (*User, error)
	LookupUserID func(uid int) (*User, error)
	// LookupGroup resolves a gid name ("not found" is
	// user.UnknownGroupError); LookupGroupID names a gid for circled
	// check (an error leaves it unnamed). nil = os/user.
	LookupGroup   func(name string) (int, error)
	LookupGroupID func(gid int) (string, error)
}

// User is an entry of the user database.
type User struct {
	Name  string // login name: USER and LOGNAME
	UID   int
	GID   int    // primary group
	Home  string // HOME
	Shell string // SHELL; "/bin/sh" when the entry names none
	// Groups are the groups whose member list names the user (the
	// supplementary groups of initgroups). GID need not be among them;
	// the default lookup leaves it out, so that a gid key replaces it.
	Groups []int
}
