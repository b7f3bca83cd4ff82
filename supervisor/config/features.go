package config

import (
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds the types and value parsers of issue 16 (sockets,
// max_age, env_file, resource limits), issue 17 §3 (hooks) and issue 18
// §4 (supervisord event listeners). The keys themselves are declared in
// keys.go's tables.

// Socket is one [socket:NAME] section (circus's keys and defaults),
// resolved.
type Socket struct {
	Name string
	File string // file that defined it
	Line int    // line of its section header
	// Family is "AF_INET", "AF_INET6" or "AF_UNIX" (path set).
	Family string
	// Type is "SOCK_STREAM" (the default) or "SOCK_DGRAM".
	Type string
	// Host and Port are the address of an AF_INET/AF_INET6 socket
	// (default localhost:8080, as circus); Port 0 picks a free port.
	Host string
	Port int
	// Path is the absolute path of an AF_UNIX socket.
	Path string
	// Backlog is listen's backlog for SOCK_STREAM (default 2048).
	Backlog int
	// Umask applies while an AF_UNIX socket is bound (-1 = circled's).
	Umask int
	// ReusePort sets SO_REUSEPORT.
	ReusePort bool
	// Interface binds to a network device (SO_BINDTODEVICE; Linux).
	Interface string
	// Blocking leaves the descriptor in blocking mode (circus's default
	// is non-blocking).
	Blocking bool
	// Replace removes an existing socket file at Path before binding
	// (only a socket, never through a symlink).
	Replace bool
}

// Addr is the socket's address for people: "127.0.0.1:8888",
// "[::1]:80" or "unix:/run/x.sock".
func (s Socket) Addr() string {
	if s.Family == "AF_UNIX" {
		return "unix:" + s.Path
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// socketTokenPrefix starts every SocketToken.
const socketTokenPrefix = "$(circle.sockets."

// SocketToken is what $(circle.sockets.NAME) and $(circus.sockets.NAME)
// in cmd and args are normalised to: the supervisor's spec mapping
// replaces it with the socket's descriptor number (SocketFD).
func SocketToken(name string) string { return socketTokenPrefix + name + ")" }

// SocketFD is the descriptor number a process of w gets socket name as:
// 3 + its index in w.Sockets; -1 when w does not use it.
func (w *Watcher) SocketFD(name string) int {
	for i, s := range w.Sockets {
		if s.Name == name {
			return 3 + i
		}
	}
	return -1
}

// ExpandSocketTokens replaces each SocketToken in s with the socket's
// descriptor number for w's processes.
func (w *Watcher) ExpandSocketTokens(s string) string {
	if !strings.Contains(s, socketTokenPrefix) {
		return s
	}
	for i, sk := range w.Sockets {
		s = strings.ReplaceAll(s, SocketToken(sk.Name), strconv.Itoa(3+i))
	}
	return s
}

// EnvFile is one env_file entry.
type EnvFile struct {
	Path     string // absolute
	Optional bool   // written with a leading "-": a missing file is no error
}

// Limits are the cgroup resource limits of each process slot (zero =
// unset).
type Limits struct {
	MemoryMax  int64   // memory_max, bytes
	MemoryHigh int64   // memory_high, bytes
	CPUMax     float64 // cpu_max, percent of one CPU (250 = two and a half CPUs)
	PidsMax    int     // pids_max
	IOWeight   int     // io_weight, 1..10000 (cgroup v2's io.weight scale)
}

// Any reports whether a limit is set.
func (l Limits) Any() bool { return l != Limits{} }

// Hooks are the hooks.* keys: command lines ("" = unset), run with the
// watcher's environment plus CIRCLED_EVENT, CIRCLED_WATCHER, CIRCLED_WID,
// CIRCLED_PID, CIRCLED_EXIT_CODE and CIRCLED_EXIT_SIGNAL where they apply.
type Hooks struct {
	BeforeStart  string
	AfterStart   string
	BeforeStop   string
	AfterStop    string
	BeforeSpawn  string
	AfterSpawn   string
	BeforeSignal string
	AfterSignal  string
	OnExit       string
	OnFatal      string
	// Timeout bounds each hook's run (hooks.timeout, default 30s).
	Timeout time.Duration
}

// HookNames are the hook points, in hooks.NAME order (circus's names plus
// on_exit and on_fatal).
var HookNames = []string{
	"before_start", "after_start", "before_stop", "after_stop",
	"before_spawn", "after_spawn", "before_signal", "after_signal",
	"on_exit", "on_fatal",
}

// Get returns the command of hook point name ("" = unset or unknown).
func (h *Hooks) Get(name string) string {
	if p := h.field(name); p != nil {
		return *p
	}
	return ""
}

func (h *Hooks) field(name string) *string {
	switch name {
	case "before_start":
		return &h.BeforeStart
	case "after_start":
		return &h.AfterStart
	case "before_stop":
		return &h.BeforeStop
	case "after_stop":
		return &h.AfterStop
	case "before_spawn":
		return &h.BeforeSpawn
	case "after_spawn":
		return &h.AfterSpawn
	case "before_signal":
		return &h.BeforeSignal
	case "after_signal":
		return &h.AfterSignal
	case "on_exit":
		return &h.OnExit
	case "on_fatal":
		return &h.OnFatal
	}
	return nil
}

// hookFieldName is the Hooks field of hook point name ("BeforeStart").
func hookFieldName(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "_") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// EventListenerConf is what makes a watcher a supervisord event listener.
type EventListenerConf struct {
	// Events are the supervisor event type names it subscribes to, upper
	// case, in the order written, without repeats (SupervisorEventTypes).
	Events []string
	// BufferSize is buffer_size: the events queued for the listener
	// while it is busy (default 10); older ones are dropped beyond it.
	BufferSize int
}

// SupervisorEventTypes are supervisor's event type names (its
// supervisor.events.EventTypes), the values events may name.
var SupervisorEventTypes = []string{
	"EVENT",
	"PROCESS_STATE", "PROCESS_STATE_STOPPED", "PROCESS_STATE_EXITED",
	"PROCESS_STATE_STARTING", "PROCESS_STATE_STOPPING", "PROCESS_STATE_BACKOFF",
	"PROCESS_STATE_FATAL", "PROCESS_STATE_RUNNING", "PROCESS_STATE_UNKNOWN",
	"PROCESS_COMMUNICATION", "PROCESS_COMMUNICATION_STDOUT", "PROCESS_COMMUNICATION_STDERR",
	"PROCESS_LOG", "PROCESS_LOG_STDOUT", "PROCESS_LOG_STDERR",
	"REMOTE_COMMUNICATION",
	"SUPERVISOR_STATE_CHANGE", "SUPERVISOR_STATE_CHANGE_RUNNING", "SUPERVISOR_STATE_CHANGE_STOPPING",
	"TICK", "TICK_5", "TICK_60", "TICK_3600",
	"PROCESS_GROUP", "PROCESS_GROUP_ADDED", "PROCESS_GROUP_REMOVED",
}

// parseEvents parses events: supervisor event type names, comma-separated.
func parseEvents(v string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		u := strings.ToUpper(e)
		if !slices.Contains(SupervisorEventTypes, u) {
			return nil, fmt.Errorf("unknown event type %q%s", e, didYouMean(u, SupervisorEventTypes))
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no event type (want names such as PROCESS_STATE or TICK_60, comma-separated)")
	}
	return out, nil
}

// parseBoundedSize parses a size (512MB, 1G; binary multiples) in
// lo..hi bytes.
func parseBoundedSize(v string, lo, hi int64) (int64, error) {
	n, err := parseSizeMax(v, hi)
	if err == nil && n < lo {
		err = fmt.Errorf("size %q is out of range (%s..%s)", strings.TrimSpace(v), humanSize(lo), humanSize(hi))
	}
	return n, err
}

// parsePercent parses a percentage of one CPU: "50", "50%", "12.5%" or
// "250%", in lo..hi.
func parsePercent(v string, lo, hi float64) (float64, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "%"))
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("invalid percentage %q (want a percentage of one CPU, such as 50%% or 200%%)", v)
	}
	if f < lo || f > hi {
		return 0, fmt.Errorf("%s%% is out of range (%g..%g%%)", t, lo, hi)
	}
	return f, nil
}

// parseEnvFileSpec parses env_file: paths, space-separated, each
// optional with a leading "-"; relative paths are against dir.
func parseEnvFileSpec(v, dir string) ([]EnvFile, error) {
	var out []EnvFile
	for _, f := range strings.Fields(v) {
		ef := EnvFile{}
		if rest, ok := strings.CutPrefix(f, "-"); ok {
			ef.Optional, f = true, rest
		}
		if f == "" {
			return nil, fmt.Errorf("empty path after -")
		}
		ef.Path = absPath(dir, f)
		out = append(out, ef)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no file (want paths, space-separated; a leading - makes one optional)")
	}
	return out, nil
}

// pythonHook matches circus's hook values: a Python dotted name
// (mypackage.hooks.check), optionally followed by circus's ", false"
// ignore-error flag.
var pythonHook = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+(\s*,\s*(?i:true|false|yes|no|on|off|1|0))?$`)

// isPythonHook reports whether a hooks.* value is circus's Python form
// rather than a command line.
func isPythonHook(v string) bool { return pythonHook.MatchString(strings.TrimSpace(v)) }
