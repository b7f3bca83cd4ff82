package config

import (
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

// KeyInfo describes one key of a section. The tables below are the one
// place a key is declared: loading (which keys exist, their aliases,
// defaults and parsers), did-you-mean suggestions, the warnings for circus
// keys circled does not implement, which keys may use $(circle.wid), which
// need POSIX, and which apply without a restart all follow from them.
// DaemonKeys and WatcherKeys export them (for need_restart and the
// README's key tables).
type KeyInfo struct {
	Name    string   // canonical name, lower case
	Aliases []string // other accepted spellings (circus's numprocess, logoutput)
	// Default is the value the key has when absent, in the file's syntax;
	// "" when it has none (unset) or depends on other keys (Note says).
	Default string
	Note    string // more about the default or the value, for documentation
	Kind    string // bool, int, duration, size, octal, path, string, signal, command, ...
	// Field is the Daemon or Watcher field the key sets ("Flapping.Window",
	// "Stdout.MaxBytes"); "" when the key feeds a computed field (cmd and
	// args make Argv).
	Field string
	WID   bool // $(circle.wid) may appear: the watcher substitutes it per process
	// Live: a reload applies a change without restarting anything
	// (watcher keys: without restarting its processes; [circled] keys:
	// without restarting circled, else the key is reported in
	// need_restart).
	Live  bool
	POSIX bool // only on POSIX systems ("not supported on windows" elsewhere)
	// OS, when set, lists the only systems (GOOS values) the key works
	// on; elsewhere it is a load error ("not supported on darwin").
	OS []string
	// Circus marks a circus key circled does not implement: loading warns
	// and ignores it.
	Circus bool
	// Supervisord marks a key for a supervisord setting, written by
	// circled convert. SupervisordKeys lists them; DaemonKeys and
	// WatcherKeys do not (yet: README's key tables do not document them).
	Supervisord bool
}

type daemonKey struct {
	KeyInfo
	set func(l *loader, d *Daemon, v string) error
}

type watcherKey struct {
	KeyInfo
	set func(l *loader, w *Watcher, v string) error
}

type streamKey struct {
	KeyInfo // Name without the stdout_stream./stderr_stream. prefix
	set     func(l *loader, w *Watcher, st *Stream, isStderr bool, v string) error
}

func setBool(p *bool) func(string) error {
	return func(v string) (err error) { *p, err = parseBool(v); return }
}

// daemonTable is the [circled] (alias [circus]) section.
var daemonTable = []daemonKey{
	{KeyInfo{Name: "include", Kind: "paths", Live: true, Note: "globs, space-separated; main file only"}, nil},
	{KeyInfo{Name: "include_dir", Kind: "paths", Live: true, Note: "directories, space-separated; main file only; default conf.d beside the main file when neither include nor include_dir is set"}, nil},
	{KeyInfo{Name: "socket", Kind: "path", Field: "Socket", Note: "main file only; default: see README"}, func(l *loader, d *Daemon, v string) error {
		d.Socket = absPath(l.mainDir, v)
		return nil
	}},
	{KeyInfo{Name: "socket_mode", Kind: "octal", Field: "SocketMode", Default: "0600"}, func(l *loader, d *Daemon, v string) error {
		m, err := parseOctal(v)
		d.SocketMode = os.FileMode(m)
		return err
	}},
	{KeyInfo{Name: "pidfile", Kind: "path", Field: "Pidfile"}, func(l *loader, d *Daemon, v string) error {
		d.Pidfile = absPath(l.mainDir, v)
		return nil
	}},
	{KeyInfo{Name: "loglevel", Kind: "debug|info|warn|error", Field: "LogLevel", Default: "info", Live: true, Note: "circus's warning and critical are warn and error"}, func(l *loader, d *Daemon, v string) error {
		switch lv := strings.ToLower(v); lv {
		case "debug", "info", "warn", "error":
			d.LogLevel = lv
		case "warning":
			d.LogLevel = "warn"
		case "critical":
			d.LogLevel = "error"
		default:
			return fmt.Errorf("invalid log level %q (want debug, info, warn or error)", v)
		}
		return nil
	}},
	{KeyInfo{Name: "log_format", Kind: "text|json", Field: "LogFormat", Default: "text"}, func(l *loader, d *Daemon, v string) error {
		switch lf := strings.ToLower(v); lf {
		case "text", "json":
			d.LogFormat = lf
		default:
			return fmt.Errorf("invalid log format %q (want text or json)", v)
		}
		return nil
	}},
	{KeyInfo{Name: "logfile", Aliases: []string{"logoutput"}, Kind: "path", Field: "Logfile", Note: "default (or -): stderr"}, func(l *loader, d *Daemon, v string) error {
		switch {
		case v == "" || v == "-":
			d.Logfile = "" // circus's "-" (stdout): circled logs to stderr
		case strings.Contains(v, "://"):
			return fmt.Errorf("%q: only a file path or - is supported", v)
		default:
			d.Logfile = absPath(l.mainDir, v)
		}
		return nil
	}},
	{KeyInfo{Name: "logfile_mode", Kind: "octal", Field: "LogfileMode", Default: "0640"}, func(l *loader, d *Daemon, v string) error {
		m, err := parseOctal(v)
		d.LogfileMode = os.FileMode(m)
		return err
	}},
	{KeyInfo{Name: "logfile_max_bytes", Kind: "size", Field: "LogfileMaxBytes", Note: "default 100 MiB; at most 1 TiB"}, func(l *loader, d *Daemon, v string) (err error) {
		d.LogfileMaxBytes, err = parseSizeMax(v, MaxLogBytes)
		return
	}},
	{KeyInfo{Name: "logfile_backups", Kind: "int", Field: "LogfileBackups", Note: "default 5; 0..10000"}, func(l *loader, d *Daemon, v string) (err error) {
		d.LogfileBackups, err = parseIntRange(v, 0, MaxBackups)
		return
	}},
	{KeyInfo{Name: "umask", Kind: "octal", Field: "Umask", POSIX: true, Live: true, Note: "the children's default umask; default: inherited"}, func(l *loader, d *Daemon, v string) (err error) {
		d.Umask, err = parseOctal(v)
		return
	}},
	{KeyInfo{Name: "graceful_timeout", Kind: "duration", Field: "GracefulTimeout", Default: "30", Live: true, Note: "at most 24h"}, func(l *loader, d *Daemon, v string) (err error) {
		d.GracefulTimeout, err = parseDurationMax(v, MaxGracefulTimeout)
		return
	}},
	{KeyInfo{Name: "warmup_delay", Kind: "duration", Field: "WarmupDelay", Default: "0", Live: true, Note: "at most 1h"}, func(l *loader, d *Daemon, v string) (err error) {
		d.WarmupDelay, err = parseDurationMax(v, MaxWarmupDelay)
		return
	}},
	{KeyInfo{Name: "watch_config", Kind: "bool", Field: "WatchConfig", Default: "true"}, func(l *loader, d *Daemon, v string) error {
		return setBool(&d.WatchConfig)(v)
	}},
	{KeyInfo{Name: "service_name", Kind: "string", Field: "ServiceName", Note: "default circled"}, func(l *loader, d *Daemon, v string) error {
		if v == "" || strings.ContainsAny(v, "/\\ \t") {
			return fmt.Errorf("invalid service name %q (no spaces or slashes)", v)
		}
		d.ServiceName = v
		return nil
	}},
	{KeyInfo{Name: "metrics_listen", Kind: "host:port", Field: "MetricsListen", Note: "serve GET /metrics (Prometheus) on this TCP address too; default: only on the control socket"}, func(l *loader, d *Daemon, v string) error {
		if v == "" {
			d.MetricsListen = ""
			return nil
		}
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			return fmt.Errorf("invalid address %q (want host:port, such as 127.0.0.1:9101)", v)
		}
		d.MetricsListen = v
		return nil
	}},
	{KeyInfo{Name: "metrics_web_config", Kind: "path", Field: "MetricsWebConfig", Note: "Prometheus web configuration file (TLS, basic auth) for metrics_listen"}, func(l *loader, d *Daemon, v string) error {
		d.MetricsWebConfig = ""
		if v != "" {
			d.MetricsWebConfig = absPath(l.mainDir, v)
		}
		return nil
	}},
	// supervisord's settings (Config.Supervisord).
	{KeyInfo{Name: "identifier", Kind: "string", Field: "Identifier", Live: true, Supervisord: true, Note: "supervisord's identifier (XML-RPC getIdentification)"}, func(l *loader, d *Daemon, v string) error {
		l.sup.Identifier = v
		return nil
	}},
	{KeyInfo{Name: "minfds", Kind: "int", Field: "MinFDs", POSIX: true, Supervisord: true, Note: "raise circled's open file limit to at least this at startup; 0..1048576"}, func(l *loader, d *Daemon, v string) (err error) {
		l.sup.MinFDs, err = parseIntRange(v, 0, MaxMinFDs)
		return
	}},
	{KeyInfo{Name: "minprocs", Kind: "int", Field: "MinProcs", POSIX: true, Supervisord: true, Note: "raise circled's process limit to at least this at startup; 0..4194304"}, func(l *loader, d *Daemon, v string) (err error) {
		l.sup.MinProcs, err = parseIntRange(v, 0, MaxMinProcs)
		return
	}},
	{KeyInfo{Name: "inet_http_addr", Kind: "host:port", Field: "InetHTTP", Supervisord: true, Note: "XML-RPC over TCP (supervisord's [inet_http_server] port); a username and password are required unless loopback"}, func(l *loader, d *Daemon, v string) (err error) {
		l.sup.InetHTTP.Addr, err = parseInetAddr(v)
		return
	}},
	{KeyInfo{Name: "inet_http_username", Kind: "string", Field: "InetHTTP", Supervisord: true}, func(l *loader, d *Daemon, v string) error {
		l.sup.InetHTTP.Username = v
		return nil
	}},
	{KeyInfo{Name: "inet_http_password", Kind: "string", Field: "InetHTTP", Supervisord: true, Note: "plain, or {SHA} and the hex SHA-1"}, func(l *loader, d *Daemon, v string) error {
		l.sup.InetHTTP.Password = v
		return nil
	}},
}

// circusDaemonKeys are [circus] keys circled does not implement.
var circusDaemonKeys = []string{
	"check_delay", "endpoint", "pubsub_endpoint", "stats_endpoint", "statsd",
	"statsd_close_outputs", "httpd", "httpd_host", "httpd_port", "debug",
	"debug_gc", "stream_backend", "multicast_endpoint", "endpoint_owner",
	"ssh_server", "ssh_keyfile", "papa_endpoint", "fqdn_prefix", "loggerconfig",
}

// watcherTable is a [watcher:NAME] section, stream and rlimit keys aside.
var watcherTable = []watcherKey{
	{KeyInfo{Name: "cmd", Kind: "command", WID: true, Note: "required"}, nil},
	{KeyInfo{Name: "args", Kind: "command", WID: true}, nil},
	{KeyInfo{Name: "numprocesses", Aliases: []string{"numprocess"}, Kind: "int", Field: "NumProcesses", Default: "1", Live: true, Note: "0..100000"}, func(l *loader, w *Watcher, v string) (err error) {
		w.NumProcesses, err = parseIntRange(v, 0, MaxProcesses)
		return
	}},
	{KeyInfo{Name: "working_dir", Kind: "path", Field: "WorkingDir", Note: "default: circled's"}, func(l *loader, w *Watcher, v string) error {
		w.WorkingDir = absPath(l.mainDir, v)
		return nil
	}},
	{KeyInfo{Name: "shell", Kind: "bool", Field: "Shell", Default: "false"}, func(l *loader, w *Watcher, v string) error { return setBool(&w.Shell)(v) }},
	{KeyInfo{Name: "uid", Kind: "user", Field: "UID", POSIX: true}, func(l *loader, w *Watcher, v string) error {
		u, id, err := l.lookupUser(v)
		if err == nil {
			w.User, w.UID = u, &id
		}
		return err
	}},
	{KeyInfo{Name: "gid", Kind: "group", Field: "GID", POSIX: true, Note: "default: the uid's primary group"}, func(l *loader, w *Watcher, v string) error {
		id, err := l.lookupGroup(v)
		if err == nil {
			w.GID = &id
		}
		return err
	}},
	{KeyInfo{Name: "umask", Kind: "octal", Field: "Umask", POSIX: true, Note: "default: [circled] umask"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Umask, err = parseOctal(v)
		return
	}},
	{KeyInfo{Name: "copy_env", Kind: "bool", Field: "CopyEnv", Default: "false"}, func(l *loader, w *Watcher, v string) error { return setBool(&w.CopyEnv)(v) }},
	{KeyInfo{Name: "copy_path", Kind: "bool", Field: "CopyPath", Default: "false"}, func(l *loader, w *Watcher, v string) error { return setBool(&w.CopyPath)(v) }},
	{KeyInfo{Name: "stop_signal", Kind: "signal", Field: "StopSignal", Default: "TERM", Live: true}, func(l *loader, w *Watcher, v string) (err error) {
		w.StopSignal, err = ParseSignal(v)
		return
	}},
	{KeyInfo{Name: "stop_children", Kind: "bool", Field: "StopChildren", Default: "true", Live: true}, func(l *loader, w *Watcher, v string) error { return setBool(&w.StopChildren)(v) }},
	{KeyInfo{Name: "graceful_timeout", Kind: "duration", Field: "GracefulTimeout", Live: true, Note: "default: [circled] graceful_timeout; at most 24h"}, func(l *loader, w *Watcher, v string) (err error) {
		w.GracefulTimeout, err = parseDurationMax(v, MaxGracefulTimeout)
		return
	}},
	{KeyInfo{Name: "respawn", Kind: "always|on-failure|never", Field: "RespawnMode", Default: "always", Live: true, Note: "true is always, false is never; on-failure: not after an exit with one of exitcodes (supervisord's autorestart = unexpected, also accepted)"}, func(l *loader, w *Watcher, v string) error {
		m, err := parseRespawn(v)
		if err == nil {
			w.RespawnMode, w.Respawn = m, m != "never"
		}
		return err
	}},
	{KeyInfo{Name: "exitcodes", Aliases: []string{"exit_codes"}, Kind: "ints", Field: "ExitCodes", Live: true, Note: "expected exit codes for respawn = on-failure, comma-separated, 0..255; default 0 with on-failure"}, func(l *loader, w *Watcher, v string) (err error) {
		w.ExitCodes, err = parseExitCodes(v)
		return
	}},
	{KeyInfo{Name: "reload_signal", Kind: "signal", Field: "ReloadSignal", Live: true, Note: "reload sends this signal instead of replacing the processes; default: replace"}, func(l *loader, w *Watcher, v string) (err error) {
		w.ReloadSignal, err = ParseSignal(v)
		return
	}},
	{KeyInfo{Name: "send_hup", Kind: "bool", Field: "ReloadSignal", Live: true, Note: "circus's: true is reload_signal = HUP"}, func(l *loader, w *Watcher, v string) error {
		on, err := parseBool(v)
		if on {
			w.ReloadSignal = "HUP" // both keys set: resolveWatcher refuses
		}
		return err
	}},
	{KeyInfo{Name: "wid_offset", Kind: "int", Field: "WIDOffset", Default: "0", Supervisord: true, Note: "$(circle.wid) is wid + wid_offset; -1..1000000"}, func(l *loader, w *Watcher, v string) (err error) {
		w.WIDOffset, err = parseIntRange(v, -1, MaxWIDOffset)
		return
	}},
	{KeyInfo{Name: "wid_width", Kind: "int", Field: "WIDWidth", Default: "0", Supervisord: true, Note: "$(circle.wid) zero-padded to this many digits; 0..20"}, func(l *loader, w *Watcher, v string) (err error) {
		w.WIDWidth, err = parseIntRange(v, 0, MaxWIDWidth)
		return
	}},
	{KeyInfo{Name: "process_names", Kind: "names", Field: "ProcessNames", Live: true, Supervisord: true, Note: "the processes' display names, space-separated, one per process"}, func(l *loader, w *Watcher, v string) (err error) {
		w.ProcessNames, err = parseProcessNames(v)
		return
	}},
	{KeyInfo{Name: "max_retry", Kind: "int", Field: "MaxRetry", Default: "5", Live: true, Note: "-1 (forever)..1000000"}, func(l *loader, w *Watcher, v string) (err error) {
		w.MaxRetry, err = parseIntRange(v, -1, MaxRetries)
		return
	}},
	{KeyInfo{Name: "max_failed_starts", Kind: "int", Field: "MaxFailedStarts", Default: "0", Live: true, Note: "0 (no limit)..1000001"}, func(l *loader, w *Watcher, v string) (err error) {
		w.MaxFailedStarts, err = parseIntRange(v, 0, MaxRetries+1)
		return
	}},
	{KeyInfo{Name: "autostart", Kind: "bool", Field: "Autostart", Default: "true", Live: true}, func(l *loader, w *Watcher, v string) error { return setBool(&w.Autostart)(v) }},
	{KeyInfo{Name: "priority", Kind: "int", Field: "Priority", Default: "0", Live: true, Note: "-1000000..1000000"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Priority, err = parseIntRange(v, -MaxPriority, MaxPriority)
		return
	}},
	{KeyInfo{Name: "warmup_delay", Kind: "duration", Field: "WarmupDelay", Default: "0", Live: true, Note: "at most 1h"}, func(l *loader, w *Watcher, v string) (err error) {
		w.WarmupDelay, err = parseDurationMax(v, MaxWarmupDelay)
		return
	}},
	{KeyInfo{Name: "singleton", Kind: "bool", Field: "Singleton", Default: "false"}, func(l *loader, w *Watcher, v string) error { return setBool(&w.Singleton)(v) }},
	{KeyInfo{Name: "critical", Kind: "bool", Field: "Critical", Default: "false", Live: true}, func(l *loader, w *Watcher, v string) error { return setBool(&w.Critical)(v) }},
	{KeyInfo{Name: "min_uptime", Kind: "duration", Field: "MinUptime", Default: "1", Live: true, Note: "at most 365 days"}, func(l *loader, w *Watcher, v string) (err error) {
		w.MinUptime, err = parseDurationMax(v, MaxDuration)
		return
	}},
	{KeyInfo{Name: "backoff_max", Kind: "duration", Field: "BackoffMax", Default: "10", Live: true, Note: "at most 365 days"}, func(l *loader, w *Watcher, v string) (err error) {
		w.BackoffMax, err = parseDurationMax(v, MaxDuration)
		return
	}},
	{KeyInfo{Name: "redirect_stderr", Kind: "bool", Field: "RedirectStderr", Default: "false"}, func(l *loader, w *Watcher, v string) error {
		b, err := parseBool(v)
		w.RedirectStderr = w.RedirectStderr || b
		return err
	}},
	{KeyInfo{Name: "flapping.attempts", Kind: "int", Field: "Flapping.Attempts", Default: "5", Live: true, Note: "1..10000"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Flapping.Attempts, err = parseIntRange(v, 1, MaxFlappingAttempts)
		return
	}},
	{KeyInfo{Name: "flapping.window", Kind: "duration", Field: "Flapping.Window", Default: "10", Live: true, Note: "at most 365 days"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Flapping.Window, err = parseDurationMax(v, MaxDuration)
		return
	}},
	{KeyInfo{Name: "flapping.retry_in", Kind: "duration", Field: "Flapping.RetryIn", Default: "30", Live: true, Note: "at most 365 days"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Flapping.RetryIn, err = parseDurationMax(v, MaxDuration)
		return
	}},
	{KeyInfo{Name: "flapping.max_retry", Kind: "int", Field: "Flapping.MaxRetry", Default: "5", Live: true, Note: "-1 (forever)..1000000"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Flapping.MaxRetry, err = parseIntRange(v, -1, MaxRetries)
		return
	}},
	{KeyInfo{Name: "check_flapping", Kind: "bool", Field: "Flapping.Attempts", Default: "true", Live: true, Note: "false turns flapping detection off (Flapping.Attempts = 0)"}, func(l *loader, w *Watcher, v string) error {
		_, err := parseBool(v) // applied by resolveWatcher once every key is read
		return err
	}},
	{KeyInfo{Name: "depends_on", Kind: "names", Field: "DependsOn", Live: true, Note: "NAME or NAME:CONDITION (started, ready or completed), comma-separated; a name alone means ready"}, func(l *loader, w *Watcher, v string) (err error) {
		w.DependsOn, err = parseDependsOn(v)
		return
	}},
	{KeyInfo{Name: "ready.tcp", Kind: "host:port", Field: "Ready.TCP", WID: true, Note: "ready when a TCP connect succeeds"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Ready.TCP, err = parseCheckAddr(v)
		return
	}},
	{KeyInfo{Name: "ready.http", Kind: "url", Field: "Ready.HTTP", WID: true, Note: "ready when a GET answers 2xx or 3xx"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Ready.HTTP, err = parseCheckURL(v)
		return
	}},
	{KeyInfo{Name: "ready.exec", Kind: "command", Field: "Ready.Exec", WID: true, Note: "ready when it exits 0 (the watcher's environment, user and working_dir)"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Ready.Exec, err = parseCheckCommand(v)
		return
	}},
	{KeyInfo{Name: "ready.log", Kind: "regexp", Field: "Ready.Log", Note: "ready when a line of stdout or stderr matches (Go regexp syntax)"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Ready.Log, err = parseRegexp(v)
		return
	}},
	{KeyInfo{Name: "ready.notify", Kind: "bool", Field: "Ready.Notify", Default: "false", POSIX: true, Note: "ready at sd_notify READY=1 on the process's own NOTIFY_SOCKET"}, func(l *loader, w *Watcher, v string) error {
		return setBool(&w.Ready.Notify)(v)
	}},
	{KeyInfo{Name: "ready.timeout", Kind: "duration", Field: "Ready.Timeout", Default: "60", Note: "not ready by then is a failed start; 10ms..24h"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Ready.Timeout, err = parseDurationRange(v, MinCheckInterval, MaxReadyTimeout)
		return
	}},
	{KeyInfo{Name: "ready.interval", Kind: "duration", Field: "Ready.Interval", Default: "0.2", Note: "between tcp, http and exec attempts while starting; 10ms..1h"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Ready.Interval, err = parseDurationRange(v, MinCheckInterval, MaxCheckInterval)
		return
	}},
	{KeyInfo{Name: "watchdog", Kind: "duration", Field: "Watchdog", Default: "0", Note: "needs ready.notify: no WATCHDOG=1 within this restarts the process as a failure; 0 = off, else 10ms..24h"}, func(l *loader, w *Watcher, v string) error {
		d, err := parseDurationMax(v, MaxWatchdog)
		if err == nil && d > 0 && d < MinCheckInterval {
			err = fmt.Errorf("duration %q is out of range (0 = off, else %s..%s)", v, humanDuration(MinCheckInterval), humanDuration(MaxWatchdog))
		}
		w.Watchdog = d
		return err
	}},
	{KeyInfo{Name: "health.tcp", Kind: "host:port", Field: "Health.TCP", WID: true, Note: "healthy while a TCP connect succeeds"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Health.TCP, err = parseCheckAddr(v)
		return
	}},
	{KeyInfo{Name: "health.http", Kind: "url", Field: "Health.HTTP", WID: true, Note: "healthy while a GET answers 2xx or 3xx"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Health.HTTP, err = parseCheckURL(v)
		return
	}},
	{KeyInfo{Name: "health.exec", Kind: "command", Field: "Health.Exec", WID: true, Note: "healthy while it exits 0 (the watcher's environment, user and working_dir)"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Health.Exec, err = parseCheckCommand(v)
		return
	}},
	{KeyInfo{Name: "health.interval", Kind: "duration", Field: "Health.Interval", Default: "10", Note: "between checks; 10ms..24h"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Health.Interval, err = parseDurationRange(v, MinCheckInterval, MaxHealthInterval)
		return
	}},
	{KeyInfo{Name: "health.timeout", Kind: "duration", Field: "Health.Timeout", Default: "5", Note: "per check; 10ms..1h"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Health.Timeout, err = parseDurationRange(v, MinCheckInterval, MaxCheckInterval)
		return
	}},
	{KeyInfo{Name: "health.retries", Kind: "int", Field: "Health.Retries", Default: "3", Note: "failures in a row that restart the process as a failure; 1..1000"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Health.Retries, err = parseIntRange(v, 1, MaxHealthRetries)
		return
	}},
	// Issue 16: sockets, max_age, env_file, resource limits.
	{KeyInfo{Name: "use_sockets", Kind: "bool", Field: "UseSockets", Default: "false", POSIX: true, Note: "the processes inherit every [socket:NAME] as descriptors 3, 4, ... (sorted by name), with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID"}, func(l *loader, w *Watcher, v string) error {
		return setBool(&w.UseSockets)(v)
	}},
	{KeyInfo{Name: "max_age", Kind: "duration", Field: "MaxAge", Default: "0", Note: "replace a process gracefully once it has run this long (plus max_age_variance); 0 = never; at most 365 days"}, func(l *loader, w *Watcher, v string) (err error) {
		w.MaxAge, err = parseDurationMax(v, MaxDuration)
		return
	}},
	{KeyInfo{Name: "max_age_variance", Kind: "duration", Field: "MaxAgeVariance", Default: "30", Note: "a random extra up to this is added to max_age, per process; at most 365 days"}, func(l *loader, w *Watcher, v string) (err error) {
		w.MaxAgeVariance, err = parseDurationMax(v, MaxDuration)
		return
	}},
	{KeyInfo{Name: "env_file", Kind: "paths", Field: "EnvFiles", Note: "systemd EnvironmentFile= syntax; space-separated, a leading - makes a file optional; applied before the env sections, read again on reload"}, func(l *loader, w *Watcher, v string) (err error) {
		w.EnvFiles, err = parseEnvFileSpec(v, l.mainDir)
		return
	}},
	{KeyInfo{Name: "memory_max", Kind: "size", Field: "Limits.MemoryMax", OS: []string{"linux", "windows"}, Note: "hard memory limit of each process slot (cgroup memory.max; a Job Object limit on Windows); 1 MiB..64 TiB"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Limits.MemoryMax, err = parseBoundedSize(v, MinMemoryLimit, MaxMemoryLimit)
		return
	}},
	{KeyInfo{Name: "memory_high", Kind: "size", Field: "Limits.MemoryHigh", OS: []string{"linux"}, Note: "memory throttling threshold of each process slot (cgroup memory.high); 1 MiB..64 TiB"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Limits.MemoryHigh, err = parseBoundedSize(v, MinMemoryLimit, MaxMemoryLimit)
		return
	}},
	{KeyInfo{Name: "cpu_max", Kind: "percent", Field: "Limits.CPUMax", OS: []string{"linux", "windows"}, Note: "CPU limit of each process slot, a percentage of one CPU (50%, 12.5%, 200%); 1..102400"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Limits.CPUMax, err = parsePercent(v, 1, MaxCPUPercent)
		return
	}},
	{KeyInfo{Name: "pids_max", Kind: "int", Field: "Limits.PidsMax", OS: []string{"linux", "windows"}, Note: "most processes and threads in each process slot (cgroup pids.max; a Job Object's process limit on Windows); 1..4194304"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Limits.PidsMax, err = parseIntRange(v, 1, MaxPids)
		return
	}},
	{KeyInfo{Name: "io_weight", Kind: "int", Field: "Limits.IOWeight", OS: []string{"linux"}, Note: "block I/O weight of each process slot (cgroup io.weight scale); 1..10000"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Limits.IOWeight, err = parseIntRange(v, 1, MaxIOWeight)
		return
	}},
	{KeyInfo{Name: "max_memory", Kind: "size", Field: "MaxMemory", OS: []string{"linux"}, Note: "restart a process gracefully when it and its descendants use more than this (pm2's max_memory_restart); 1 MiB..64 TiB"}, func(l *loader, w *Watcher, v string) (err error) {
		w.MaxMemory, err = parseBoundedSize(v, MinMemoryLimit, MaxMemoryLimit)
		return
	}},
	{KeyInfo{Name: "max_memory_interval", Kind: "duration", Field: "MaxMemoryInterval", Default: "5", OS: []string{"linux"}, Note: "how often max_memory samples where cgroup memory events are not available; 100ms..1h"}, func(l *loader, w *Watcher, v string) (err error) {
		w.MaxMemoryInterval, err = parseDurationRange(v, MinSampleInterval, MaxSampleInterval)
		return
	}},
	// Issue 17 §3: hooks as commands.
	hookKey("before_start", "before the watcher starts; exiting non-zero vetoes the start"),
	hookKey("after_start", "once the watcher has started"),
	hookKey("before_stop", "before the watcher stops; exiting non-zero vetoes the stop"),
	hookKey("after_stop", "once the watcher has stopped"),
	hookKey("before_spawn", "before each process is spawned; exiting non-zero vetoes the spawn"),
	hookKey("after_spawn", "after each process is spawned"),
	hookKey("before_signal", "before a signal is sent to a process; exiting non-zero vetoes it"),
	hookKey("after_signal", "after a signal is sent to a process"),
	hookKey("on_exit", "when a process exits (CIRCLED_EXIT_CODE, CIRCLED_EXIT_SIGNAL)"),
	hookKey("on_fatal", "when the watcher gives up restarting (fatal)"),
	{KeyInfo{Name: "hooks.timeout", Kind: "duration", Field: "Hooks.Timeout", Default: "30", Note: "bounds each hook's run; 10ms..24h"}, func(l *loader, w *Watcher, v string) (err error) {
		w.Hooks.Timeout, err = parseDurationRange(v, MinCheckInterval, MaxHookTimeout)
		return
	}},
	// Issue 18 §4: supervisord's [eventlistener:x], as circled convert
	// writes it.
	{KeyInfo{Name: "eventlistener.events", Kind: "names", Field: "EventListener", Supervisord: true, Note: "makes the watcher a supervisord event listener: supervisor event types, comma-separated (PROCESS_STATE, TICK_60, ...)"}, func(l *loader, w *Watcher, v string) error {
		ev, err := parseEvents(v)
		if err == nil {
			w.eventListener().Events = ev
		}
		return err
	}},
	{KeyInfo{Name: "eventlistener.buffer_size", Kind: "int", Field: "EventListener", Supervisord: true, Note: "events queued while the listener is busy; default 10; 1..10000; needs eventlistener.events"}, func(l *loader, w *Watcher, v string) error {
		n, err := parseIntRange(v, 1, MaxEventBuffer)
		if err == nil {
			w.eventListener().BufferSize = n
		}
		return err
	}},
}

type socketKey struct {
	KeyInfo
	set func(l *loader, sk *Socket, v string) error
}

// socketTable is a [socket:NAME] section: circus's keys, defaults and
// meaning. resolveSocket checks the keys that depend on each other.
var socketTable = []socketKey{
	{KeyInfo{Name: "host", POSIX: true, Kind: "host", Field: "Host", Default: "localhost", Note: "a name or an address; localhost is 127.0.0.1 (AF_INET) or ::1 (AF_INET6)"}, func(l *loader, sk *Socket, v string) error {
		if v == "" || strings.ContainsAny(v, " \t/") {
			return fmt.Errorf("invalid host %q", v)
		}
		sk.Host = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
		return nil
	}},
	{KeyInfo{Name: "port", POSIX: true, Kind: "int", Field: "Port", Default: "8080", Note: "0 picks a free port; 0..65535"}, func(l *loader, sk *Socket, v string) (err error) {
		sk.Port, err = parseIntRange(v, 0, 65535)
		return
	}},
	{KeyInfo{Name: "path", POSIX: true, Kind: "path", Field: "Path", Note: "a unix socket (family AF_UNIX); host and port are then ignored"}, func(l *loader, sk *Socket, v string) error {
		if v == "" {
			return fmt.Errorf("empty path")
		}
		sk.Path = absPath(l.mainDir, v)
		if len(sk.Path) > MaxUnixPath {
			return fmt.Errorf("path %s is %d bytes long (a unix socket path is at most %d)", sk.Path, len(sk.Path), MaxUnixPath)
		}
		return nil
	}},
	{KeyInfo{Name: "family", POSIX: true, Kind: "AF_INET|AF_INET6|AF_UNIX", Field: "Family", Note: "default AF_UNIX with path, AF_INET6 for an IPv6 host address, else AF_INET"}, func(l *loader, sk *Socket, v string) error {
		switch f := strings.ToUpper(v); f {
		case "AF_INET", "AF_INET6", "AF_UNIX":
			sk.Family = f
			return nil
		}
		return fmt.Errorf("unknown family %q (want AF_INET, AF_INET6 or AF_UNIX)", v)
	}},
	{KeyInfo{Name: "type", POSIX: true, Kind: "SOCK_STREAM|SOCK_DGRAM", Field: "Type", Default: "SOCK_STREAM"}, func(l *loader, sk *Socket, v string) error {
		switch t := strings.ToUpper(v); t {
		case "SOCK_STREAM", "SOCK_DGRAM":
			sk.Type = t
			return nil
		}
		return fmt.Errorf("unknown type %q (want SOCK_STREAM or SOCK_DGRAM)", v)
	}},
	{KeyInfo{Name: "backlog", POSIX: true, Kind: "int", Field: "Backlog", Default: "2048", Note: "listen backlog (SOCK_STREAM); 1..65535"}, func(l *loader, sk *Socket, v string) (err error) {
		sk.Backlog, err = parseIntRange(v, 1, MaxBacklog)
		return
	}},
	{KeyInfo{Name: "umask", POSIX: true, Kind: "octal", Field: "Umask", Note: "umask while a unix socket is bound (its file's permissions); default: circled's"}, func(l *loader, sk *Socket, v string) (err error) {
		sk.Umask, err = parseOctal(v)
		return
	}},
	{KeyInfo{Name: "so_reuseport", POSIX: true, Kind: "bool", Field: "ReusePort", Default: "false", Note: "SO_REUSEPORT"}, func(l *loader, sk *Socket, v string) error {
		return setBool(&sk.ReusePort)(v)
	}},
	{KeyInfo{Name: "interface", POSIX: true, Kind: "string", Field: "Interface", OS: []string{"linux"}, Note: "bind to this network interface (SO_BINDTODEVICE)"}, func(l *loader, sk *Socket, v string) error {
		if v == "" || len(v) > 15 || strings.ContainsAny(v, " \t/:") {
			return fmt.Errorf("invalid interface name %q", v)
		}
		sk.Interface = v
		return nil
	}},
	{KeyInfo{Name: "blocking", POSIX: true, Kind: "bool", Field: "Blocking", Default: "false", Note: "false (circus's default): the processes get a non-blocking descriptor"}, func(l *loader, sk *Socket, v string) error {
		return setBool(&sk.Blocking)(v)
	}},
	{KeyInfo{Name: "replace", POSIX: true, Kind: "bool", Field: "Replace", Default: "false", Note: "remove an existing socket file at path first (only a socket; never through a symlink)"}, func(l *loader, sk *Socket, v string) error {
		return setBool(&sk.Replace)(v)
	}},
}

var socketByName = keyIndex(socketTable, func(k *socketKey) *KeyInfo { return &k.KeyInfo })

// circusWatcherKeys are circus watcher keys circled does not implement;
// so is every hooks.* key but HookNames and hooks.timeout.
var circusWatcherKeys = []string{
	"virtualenv", "virtualenv_py_ver", "shell_args", "close_child_stdin",
	"close_child_stdout", "close_child_stderr", "on_demand", "use_papa",
	"stdin_socket", "flapping.active",
}

var rlimitNames = []string{
	"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
	"nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}

// streamTable is stdout_stream.* and stderr_stream.*.
var streamTable = []streamKey{
	{KeyInfo{Name: "class", Kind: "StdoutStream|FileStream|TimedRotatingFileStream|NullStream", Field: "Class", Default: "StdoutStream",
		Note: "stderr_stream.class = stdout (exactly) sends stderr into the stdout stream"}, func(l *loader, w *Watcher, st *Stream, isStderr bool, v string) error {
		// Ambiguity: circus's stderr_stream.class = StdoutStream sends
		// stderr to circus's own output, while circled's short name
		// "stdout" on stderr_stream reads as "into the stdout stream".
		// The exact lower-case "stdout" means redirect_stderr; any other
		// spelling (StdoutStream) means circled's own stderr.
		if isStderr && v == "stdout" {
			w.RedirectStderr = true
			return nil
		}
		name := strings.ToLower(v)
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:] // circus.stream.FileStream
		}
		c, ok := streamClasses[name]
		if !ok {
			cands := []string{"StdoutStream", "FileStream", "TimedRotatingFileStream", "NullStream"}
			return fmt.Errorf("unknown stream class %q (want StdoutStream, FileStream, TimedRotatingFileStream or NullStream)%s", v, didYouMean(v, cands))
		}
		st.Class = c
		return nil
	}},
	{KeyInfo{Name: "filename", Kind: "path", Field: "Filename", WID: true, Note: "required for FileStream and TimedRotatingFileStream"}, func(l *loader, w *Watcher, st *Stream, _ bool, v string) error {
		if v == "" {
			return fmt.Errorf("empty filename")
		}
		st.Filename = absPath(l.mainDir, v)
		return nil
	}},
	{KeyInfo{Name: "max_bytes", Kind: "size", Field: "MaxBytes", Default: "0", Note: "0 = no size rotation; at most 1 TiB"}, func(l *loader, w *Watcher, st *Stream, _ bool, v string) (err error) {
		st.MaxBytes, err = parseSizeMax(v, MaxLogBytes)
		return
	}},
	{KeyInfo{Name: "backup_count", Kind: "int", Field: "BackupCount", Default: "0", Note: "0..10000"}, func(l *loader, w *Watcher, st *Stream, _ bool, v string) (err error) {
		st.BackupCount, err = parseIntRange(v, 0, MaxBackups)
		return
	}},
	{KeyInfo{Name: "max_age", Kind: "int", Field: "MaxAge", Default: "0", Note: "days, 0..3650"}, func(l *loader, w *Watcher, st *Stream, _ bool, v string) (err error) {
		st.MaxAge, err = parseIntRangeUnit(v, 0, MaxAgeDays, " days")
		return
	}},
	{KeyInfo{Name: "compress", Kind: "bool", Field: "Compress", Default: "false"}, func(l *loader, w *Watcher, st *Stream, _ bool, v string) error {
		return setBool(&st.Compress)(v)
	}},
	{KeyInfo{Name: "rotate_when", Kind: "S|M|H|D|midnight|W0..W6", Field: "RotateWhen", Note: "default H for TimedRotatingFileStream"}, func(l *loader, w *Watcher, st *Stream, _ bool, v string) error {
		u := strings.ToUpper(v)
		switch {
		case u == "S" || u == "M" || u == "H" || u == "D":
			st.RotateWhen = u
		case u == "MIDNIGHT":
			st.RotateWhen = "midnight"
		case len(u) == 2 && u[0] == 'W' && u[1] >= '0' && u[1] <= '6':
			st.RotateWhen = u
		default:
			return fmt.Errorf("invalid rotate_when %q (want S, M, H, D, midnight or W0..W6)", v)
		}
		return nil
	}},
	{KeyInfo{Name: "rotate_interval", Kind: "int", Field: "RotateInterval", Note: "default 1 for TimedRotatingFileStream; at most 366 days of rotate_when units"}, func(l *loader, w *Watcher, st *Stream, _ bool, v string) (err error) {
		// The bound for the unit is checked by checkStream, once
		// rotate_when is known; S (seconds) allows the most.
		st.RotateInterval, err = parseIntRange(v, 1, int(MaxRotatePeriod/time.Second))
		return
	}},
	{KeyInfo{Name: "time_format", Kind: "string", Field: "TimeFormat"}, func(l *loader, w *Watcher, st *Stream, _ bool, v string) error {
		st.TimeFormat = v
		return nil
	}},
	{KeyInfo{Name: "file_mode", Kind: "octal", Field: "FileMode", Default: "0640"}, func(l *loader, w *Watcher, st *Stream, _ bool, v string) error {
		m, err := parseOctal(v)
		st.FileMode = os.FileMode(m)
		return err
	}},
}

// DaemonKeys describes the keys of the [circled] section, in table order,
// the circus keys circled ignores last.
func DaemonKeys() []KeyInfo {
	var out []KeyInfo
	for _, k := range daemonTable {
		if !k.Supervisord {
			out = append(out, k.KeyInfo)
		}
	}
	for _, n := range circusDaemonKeys {
		out = append(out, KeyInfo{Name: n, Circus: true})
	}
	return out
}

// WatcherKeys describes the keys of a [watcher:NAME] section: the
// watcher's own, the rlimit_* keys, stdout_stream.* and stderr_stream.*,
// then the circus keys circled ignores (and hooks.*).
func WatcherKeys() []KeyInfo {
	var out []KeyInfo
	for _, k := range watcherTable {
		if !k.Supervisord {
			out = append(out, k.KeyInfo)
		}
	}
	for _, r := range rlimitNames {
		out = append(out, KeyInfo{Name: "rlimit_" + r, Kind: "limit", Field: "Rlimits", POSIX: true, Note: "a number or unlimited; default: inherited"})
	}
	for _, prefix := range []string{"stdout_stream.", "stderr_stream."} {
		field := "Stdout."
		if prefix == "stderr_stream." {
			field = "Stderr."
		}
		for _, k := range streamTable {
			ki := k.KeyInfo
			ki.Name, ki.Field = prefix+ki.Name, field+ki.Field
			out = append(out, ki)
		}
	}
	for _, n := range circusWatcherKeys {
		out = append(out, KeyInfo{Name: n, Circus: true})
	}
	out = append(out, KeyInfo{Name: "hooks.*", Circus: true, Note: "any other hook name (circus's extended_stats, ...)"})
	return out
}

// hookKey declares hooks.NAME.
func hookKey(name, when string) watcherKey {
	return watcherKey{KeyInfo{Name: "hooks." + name, Kind: "command", Field: "Hooks." + hookFieldName(name), Note: "run " + when}, func(l *loader, w *Watcher, v string) error {
		p := w.Hooks.field(name)
		*p = ""
		if isPythonHook(v) {
			return warnOnly{fmt.Sprintf("%q is a circus (Python) hook: circle hooks are commands (run with the watcher's environment plus CIRCLED_EVENT, CIRCLED_WATCHER, ...; write a command with a path, such as ./check.sh, to run a file); ignored", v)}
		}
		c, err := parseCheckCommand(v)
		*p = c
		return err
	}}
}

// warnOnly is returned by a key's parser for a value that loads with a
// warning (Msg) instead of an error.
type warnOnly struct{ Msg string }

func (w warnOnly) Error() string { return w.Msg }

// eventListener returns w.EventListener, made with its defaults if nil.
func (w *Watcher) eventListener() *EventListenerConf {
	if w.EventListener == nil {
		w.EventListener = &EventListenerConf{BufferSize: DefaultEventBuffer}
	}
	return w.EventListener
}

// SocketKeys describes the keys of a [socket:NAME] section (circus's).
func SocketKeys() []KeyInfo {
	out := make([]KeyInfo, len(socketTable))
	for i, k := range socketTable {
		out[i] = k.KeyInfo
	}
	return out
}

// SupervisordKeys describes the [circled] and [watcher:NAME] keys of
// supervisord's settings (KeyInfo.Supervisord): circled convert writes
// them; DaemonKeys and WatcherKeys leave them out.
func SupervisordKeys() (daemon, watcher []KeyInfo) {
	for _, k := range daemonTable {
		if k.Supervisord {
			daemon = append(daemon, k.KeyInfo)
		}
	}
	for _, k := range watcherTable {
		if k.Supervisord {
			watcher = append(watcher, k.KeyInfo)
		}
	}
	return daemon, watcher
}

// keyIndex maps every name and alias of a table, lower case, to its entry.
func keyIndex[K any](table []K, info func(*K) *KeyInfo) map[string]*K {
	m := map[string]*K{}
	for i := range table {
		ki := info(&table[i])
		m[ki.Name] = &table[i]
		for _, a := range ki.Aliases {
			m[a] = &table[i]
		}
	}
	return m
}

var (
	daemonByName  = keyIndex(daemonTable, func(k *daemonKey) *KeyInfo { return &k.KeyInfo })
	watcherByName = keyIndex(watcherTable, func(k *watcherKey) *KeyInfo { return &k.KeyInfo })
	streamByName  = keyIndex(streamTable, func(k *streamKey) *KeyInfo { return &k.KeyInfo })
)

// candidates are the did-you-mean names of a section's keys: canonical
// names, ignored circus keys included, aliases and hooks.* left out.
func candidates(keys []KeyInfo) []string {
	var out []string
	for _, k := range keys {
		if !strings.Contains(k.Name, "*") {
			out = append(out, k.Name)
		}
	}
	return out
}

var (
	daemonCandidates              = candidates(append(DaemonKeys(), supDaemonKeys...))
	allWatcherKeys                = candidates(append(WatcherKeys(), supWatcherKeys...))
	supDaemonKeys, supWatcherKeys = SupervisordKeys()
)

// defaultDaemon is the [circled] section with no key set: every table
// default applied.
func defaultDaemon(l *loader) Daemon {
	d := Daemon{Umask: -1}
	for _, k := range daemonTable {
		if k.Default != "" {
			if err := k.set(l, &d, k.Default); err != nil {
				panic("config: bad default of [circled] " + k.Name + ": " + err.Error())
			}
		}
	}
	return d
}

// defaultWatcher is a watcher with no key set: every table default
// applied (graceful_timeout's comes from the [circled] section).
func (l *loader) defaultWatcher() *Watcher {
	w := &Watcher{Umask: -1, GracefulTimeout: l.daemon.GracefulTimeout}
	for _, k := range watcherTable {
		if k.Default != "" && k.set != nil && k.Name != "check_flapping" {
			if err := k.set(l, w, k.Default); err != nil {
				panic("config: bad default of " + k.Name + ": " + err.Error())
			}
		}
	}
	for _, st := range []*Stream{&w.Stdout, &w.Stderr} {
		for _, k := range streamTable {
			if k.Default != "" {
				if err := k.set(l, w, st, false, k.Default); err != nil {
					panic("config: bad default of stream " + k.Name + ": " + err.Error())
				}
			}
		}
	}
	return w
}

// liveWatcherFields are the Watcher fields a reload applies without
// restarting processes (the Live watcher keys' fields).
func liveWatcherFields() []string {
	var out []string
	for _, k := range watcherTable {
		if k.Live && k.Field != "" && !slices.Contains(out, k.Field) {
			out = append(out, k.Field)
		}
	}
	// respawn sets it besides RespawnMode.
	return append(out, "Respawn")
}

// WriteKeyTables writes the key tables as Markdown, one per section, for
// the README's configuration reference (testdata/keys.md is the
// generated copy a test keeps current).
func WriteKeyTables(w io.Writer) error {
	var b strings.Builder
	table := func(title string, keys []KeyInfo) {
		fmt.Fprintf(&b, "### %s\n\n", title)
		b.WriteString("| key | aliases | default | type | $(circle.wid) | reload | platforms | notes |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|\n")
		var ignored []string
		for _, k := range keys {
			if k.Circus {
				ignored = append(ignored, "`"+k.Name+"`")
				continue
			}
			cell := func(s string) string {
				if s == "" {
					return ""
				}
				return "`" + s + "`"
			}
			aliases := make([]string, len(k.Aliases))
			for i, a := range k.Aliases {
				aliases[i] = cell(a)
			}
			wid, live, plat := "", "restart", "all"
			if k.WID {
				wid = "yes"
			}
			if k.Live {
				live = "live"
			}
			if k.POSIX {
				plat = "POSIX"
			}
			if len(k.OS) > 0 {
				plat = strings.Join(k.OS, ", ")
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s | %s |\n",
				k.Name, strings.Join(aliases, ", "), cell(k.Default), strings.ReplaceAll(k.Kind, "|", `\|`), wid, live, plat, k.Note)
		}
		if len(ignored) > 0 {
			fmt.Fprintf(&b, "\ncircus keys accepted with a warning and ignored: %s.\n", strings.Join(ignored, ", "))
		}
		b.WriteString("\n")
	}
	table("[circled] (alias [circus])", DaemonKeys())
	table("[watcher:NAME]", WatcherKeys())
	table("[socket:NAME]", SocketKeys())
	table("supervisord settings, written by circled convert: [circled]", supDaemonKeys)
	table("supervisord settings, written by circled convert: [watcher:NAME]", supWatcherKeys)
	_, err := io.WriteString(w, b.String())
	return err
}
