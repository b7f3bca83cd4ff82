package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// This file reads supervisord's configuration files (supervisord.conf and
// the files its [include] names) into the same Config a circled file
// gives: one Watcher per [program:x] (per group it belongs to). The
// sections are parsed by the same scanner; values are read the way
// supervisor 4 reads them (inline ; and # comments, %(name)s expansions).

// isSupervisordFile says whether a main file is supervisord's: it has a
// [supervisord] or a [program:x] section.
func isSupervisordFile(f *srcFile) bool {
	for _, s := range f.sections {
		if s.name == "supervisord" || strings.HasPrefix(s.name, "program:") {
			return true
		}
	}
	return false
}

// svState is what a loader keeps while it reads a supervisord file.
type svState struct {
	expansions  map[string]pyVal // ENV_X
	childlogdir string
	directory   string  // [supervisord] directory
	env         []envKV // SUPERVISOR_ENABLED, SUPERVISOR_SERVER_URL, [supervisord] environment
	userEnv     []envKV // [supervisord] environment alone
	logfileSet  bool
	notes       map[string][]string // watcher name ("" = [circled]) -> what changed meaning
	infos       []*svInfo
	inetSec     *srcSection
	seen        map[string]*srcSection // section name -> first definition
}

// svInfo is what the converter needs besides the resolved watcher.
type svInfo struct {
	w     *Watcher
	group string  // the [group:g] it belongs to; "" for a program of its own
	env   []envKV // variables the program sets (after the global ones)
}

// svSupervisordKeys are the [supervisord] keys: what each does is in
// svDaemonKey.
var svSupervisordKeys = []string{
	"logfile", "logfile_maxbytes", "logfile_backups", "loglevel", "pidfile",
	"umask", "minfds", "minprocs", "childlogdir", "directory", "environment",
	"identifier", "user", "nodaemon", "silent", "nocleanup", "strip_ansi",
}

// svIgnoredSupervisordKeys are accepted with a warning.
var svIgnoredSupervisordKeys = []string{"delay_secs", "profile_options"}

// svProgramKeys are the [program:x] keys circled implements.
var svProgramKeys = []string{
	"command", "process_name", "numprocs", "numprocs_start", "priority",
	"autostart", "autorestart", "startsecs", "startretries", "exitcodes",
	"stopsignal", "stopwaitsecs", "stopasgroup", "killasgroup", "user",
	"redirect_stderr", "stdout_logfile", "stdout_logfile_maxbytes",
	"stdout_logfile_backups", "stderr_logfile", "stderr_logfile_maxbytes",
	"stderr_logfile_backups", "environment", "directory", "umask",
}

// svIgnoredProgramKeys are supervisord [program:x] keys circled does not
// implement: a warning names each.
var svIgnoredProgramKeys = []string{
	"stdout_capture_maxbytes", "stdout_events_enabled", "stdout_syslog",
	"stderr_capture_maxbytes", "stderr_events_enabled", "stderr_syslog",
	"serverurl",
}

// svListenerKeys are the keys an [eventlistener:x] section has besides
// the [program:x] ones.
var svListenerKeys = []string{"events", "buffer_size", "result_handler"}

// svListener reads an [eventlistener:x] section's own keys into
// w.EventListener.
func (l *loader) svListener(s *srcSection, w *Watcher, keys map[string]srcKey, get func(string) (string, srcKey, bool)) {
	el := w.eventListener()
	if v, k, ok := get("events"); ok {
		ev, err := parseEvents(v)
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		}
		el.Events = ev
	} else if _, present := keys["events"]; !present {
		l.errorf(s, s.line, "events", "an event listener needs events (supervisor event types, such as PROCESS_STATE)")
	}
	if v, k, ok := get("buffer_size"); ok {
		n, err := parseIntRange(v, 1, MaxEventBuffer)
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		}
		el.BufferSize = n
	}
	if v, k, ok := get("result_handler"); ok && v != "supervisor.dispatchers:default_handler" {
		l.warnf(s, k.line, k.name, "circled has only supervisor's default result handler; %s ignored", v)
	}
	if w.RedirectStderr {
		k := keys["redirect_stderr"]
		l.errorf(s, k.line, k.name, "an event listener's stdout is its protocol channel: redirect_stderr = true is not allowed (as in supervisord)")
	}
}

// SupervisordProgramKeys lists the [program:x] keys circled reads and
// those it accepts with a warning (for documentation and tests).
func SupervisordProgramKeys() (implemented, ignored []string) {
	return slices.Clone(svProgramKeys), slices.Clone(svIgnoredProgramKeys)
}

func (l *loader) note(watcher, format string, args ...any) {
	if l.sv.notes == nil {
		l.sv.notes = map[string][]string{}
	}
	l.sv.notes[watcher] = append(l.sv.notes[watcher], fmt.Sprintf(format, args...))
}

// svKeys reads a section's keys into a map by lower-case name, values
// read as supervisord reads them.
func svKeys(s *srcSection) (map[string]srcKey, []string) {
	m := map[string]srcKey{}
	var order []string
	for _, k := range s.keys {
		lk := strings.ToLower(k.name)
		k.value = svValue(k.value)
		m[lk] = k
		order = append(order, lk)
	}
	return m, order
}

// hereOf is %(here)s for a section: the directory of its file.
func hereOf(s *srcSection) string { return filepath.Dir(s.file.path) }

// svExpandCommon expands a value of s with %(here)s and ENV_X.
func (l *loader) svExpandCommon(s *srcSection, v string, extra map[string]pyVal) (string, error) {
	vals := map[string]pyVal{"here": pyStr(hereOf(s))}
	for k, x := range l.sv.expansions {
		vals[k] = x
	}
	for k, x := range extra {
		vals[k] = x
	}
	return pyExpand(v, vals, nil, "")
}

// svMain reads the daemon sections of a supervisord main file:
// [supervisord], [unix_http_server], [inet_http_server] and [include].
func (l *loader) svMain(f *srcFile) {
	l.sv = &svState{expansions: map[string]pyVal{}, seen: map[string]*srcSection{}}
	for k, v := range l.environ {
		l.sv.expansions["ENV_"+k] = pyStr(v)
	}
	tmp := l.environ["TMPDIR"]
	if tmp == "" || !filepath.IsAbs(tmp) {
		tmp = "/tmp"
	}
	l.sv.childlogdir = filepath.Clean(tmp)
	// supervisord's defaults where they differ from circled's.
	l.daemon.Umask = 0o022
	l.daemon.SocketMode = 0o700
	l.sup.Identifier = "supervisor"
	l.sup.MinFDs = 1024
	l.sup.MinProcs = 200
	l.daemon.LogfileMaxBytes = 50 << 20
	l.daemon.LogfileBackups = 10
	l.daemon.WatchConfig = false // supervisord applies changes on reread/update only
	l.hasInc = true              // no default conf.d
	l.note("", "priority: circled starts higher priorities first and stops them last, so each priority is supervisord's negated (999 is -999)")
	l.note("", "killasgroup = false: circled's final SIGKILL goes to the whole process group all the same")
	l.note("", "autostart, autorestart, startsecs, startretries, exitcodes, stopwaitsecs, stopasgroup: see respawn, exitcodes, min_uptime, max_retry, graceful_timeout, stop_children")
	l.note("", "startretries is max_retry, and max_failed_starts = startretries + 1: the process is left down (FATAL) after that many starts in a row that end before min_uptime, as supervisord does")
	for _, s := range f.sections {
		switch s.name {
		case "supervisord":
			l.svDaemon(s)
		case "unix_http_server":
			l.svUnixHTTP(s)
		case "inet_http_server":
			l.svInetHTTP(s)
		case "include":
			l.svInclude(s)
		}
	}
}

func (l *loader) svInclude(s *srcSection) {
	keys, order := svKeys(s)
	for _, name := range order {
		if name != "files" {
			k := keys[name]
			l.errorf(s, k.line, k.name, "%s", unknownMsg("key", name, []string{"files"}))
		}
	}
	k, ok := keys["files"]
	if !ok {
		l.errorf(s, s.line, "files", "[include] has no files setting")
		return
	}
	v, err := l.svExpandCommon(s, k.value, nil)
	if err != nil {
		l.errorf(s, k.line, k.name, "%v", err)
		return
	}
	for _, p := range strings.Fields(v) {
		l.includes = append(l.includes, includeSpec{val: p, sec: s, line: k.line, key: k.name})
	}
}

// svDaemon applies a [supervisord] section.
func (l *loader) svDaemon(s *srcSection) {
	keys, order := svKeys(s)
	for _, name := range order {
		k := keys[name]
		if slices.Contains(svIgnoredSupervisordKeys, name) {
			l.warnf(s, k.line, k.name, "supervisord setting not implemented by circled; ignored")
			continue
		}
		if !slices.Contains(svSupervisordKeys, name) {
			l.errorf(s, k.line, k.name, "%s", unknownMsg("key", name, append(slices.Clone(svSupervisordKeys), svIgnoredSupervisordKeys...)))
			continue
		}
		v := k.value
		if name != "environment" {
			var err error
			if v, err = l.svExpandCommon(s, v, nil); err != nil {
				l.errorf(s, k.line, k.name, "%v", err)
				continue
			}
		}
		if err := l.svDaemonKey(s, k, name, v); err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		}
	}
}

func (l *loader) svDaemonKey(s *srcSection, k srcKey, name, v string) (err error) {
	d := &l.daemon
	here := hereOf(s)
	switch name {
	case "logfile":
		l.sv.logfileSet = true
		switch strings.ToLower(v) {
		case "/dev/stdout", "/dev/stderr", "/dev/fd/1", "/dev/fd/2", "-", "":
			d.Logfile = ""
			l.note("", "logfile = %s: circled logs to its standard error", v)
		case "syslog":
			d.Logfile = ""
			l.warnf(s, k.line, k.name, "syslog is not supported by circled: it logs to its standard error")
		default:
			d.Logfile = absPath(here, v)
		}
	case "logfile_maxbytes":
		if d.LogfileMaxBytes, err = parseSizeMax(v, MaxLogBytes); err == nil && d.LogfileMaxBytes == 0 {
			d.LogfileMaxBytes = MaxLogBytes
			l.note("", "logfile_maxbytes = 0 (never rotate): circled rotates at %s", humanSize(MaxLogBytes))
		}
	case "logfile_backups":
		if d.LogfileBackups, err = parseIntRange(v, 0, MaxBackups); err == nil && d.LogfileBackups == 0 {
			d.LogfileBackups = 1
			l.note("", "logfile_backups = 0: circled keeps 1 backup")
		}
	case "loglevel":
		switch strings.ToLower(v) {
		case "critical", "error":
			d.LogLevel = "error"
		case "warn", "warning":
			d.LogLevel = "warn"
		case "info":
			d.LogLevel = "info"
		case "debug", "trace", "blather":
			d.LogLevel = "debug"
			if strings.ToLower(v) != "debug" {
				l.note("", "loglevel = %s: circled's most detailed level is debug", v)
			}
		default:
			return fmt.Errorf("invalid log level %q (want critical, error, warn, info, debug, trace or blather)", v)
		}
	case "pidfile":
		d.Pidfile = absPath(here, v)
	case "umask":
		if !posixProcessAttrs {
			return errNotSupported
		}
		d.Umask, err = parseOctal(v)
	case "minfds":
		l.sup.MinFDs, err = parseIntRange(v, 0, MaxMinFDs)
	case "minprocs":
		l.sup.MinProcs, err = parseIntRange(v, 0, MaxMinProcs)
	case "childlogdir":
		if v == "" {
			return fmt.Errorf("empty directory")
		}
		l.sv.childlogdir = absPath(here, v)
	case "directory":
		if v == "" {
			return fmt.Errorf("empty directory")
		}
		l.sv.directory = absPath(here, v)
		l.note("", "directory = %s: circled does not chdir; programs without a directory of their own start there", l.sv.directory)
	case "environment":
		ev, err := l.svExpandCommon(s, v, nil)
		if err != nil {
			return err
		}
		kvs, err := parseSVEnvironment(ev)
		if err != nil {
			return err
		}
		l.sv.userEnv = kvs
	case "identifier":
		l.sup.Identifier = v
	case "user":
		l.warnf(s, k.line, k.name, "circled does not switch its own user: start it as %s (programs keep their own user key)", v)
	case "nodaemon", "silent", "nocleanup", "strip_ansi":
		var b bool
		if b, err = parseBool(v); err == nil && name == "strip_ansi" && b {
			l.warnf(s, k.line, k.name, "circled does not strip ANSI escapes from logs; ignored")
		}
	}
	return err
}

func (l *loader) svUnixHTTP(s *srcSection) {
	keys, order := svKeys(s)
	for _, name := range order {
		k := keys[name]
		v, err := l.svExpandCommon(s, k.value, nil)
		if err == nil {
			switch name {
			case "file":
				if v == "" {
					err = fmt.Errorf("empty path")
				} else {
					l.daemon.Socket = absPath(hereOf(s), v)
				}
			case "chmod":
				var m int
				m, err = parseOctal(v)
				l.daemon.SocketMode = os.FileMode(m)
			case "chown":
				l.warnf(s, k.line, k.name, "circled does not chown its socket; it belongs to circled's user (use chmod, or run circled as that user)")
			case "username", "password":
				l.warnf(s, k.line, k.name, "the control socket has no password in circled: its permissions (chmod) protect it; ignored")
			default:
				err = fmt.Errorf("%s", unknownMsg("key", name, []string{"file", "chmod", "chown", "username", "password"}))
			}
		}
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		}
	}
}

func (l *loader) svInetHTTP(s *srcSection) {
	keys, order := svKeys(s)
	l.sv.inetSec = s
	h := &l.sup.InetHTTP
	for _, name := range order {
		k := keys[name]
		v, err := l.svExpandCommon(s, k.value, nil)
		if err == nil {
			switch name {
			case "port":
				h.Addr, err = parseInetAddr(v)
				l.inetAt = &Error{File: s.file.path, Line: k.line, Key: keyName(s, k.name)}
			case "username":
				h.Username = v
			case "password":
				h.Password = v
			default:
				err = fmt.Errorf("%s", unknownMsg("key", name, []string{"port", "username", "password"}))
			}
		}
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		}
	}
	if _, ok := keys["port"]; !ok {
		l.errorf(s, s.line, "port", "[inet_http_server] needs port")
	}
}

// checkInetHTTP validates the TCP listener's credentials.
func (l *loader) checkInetHTTP() {
	h := l.sup.InetHTTP
	at := l.inetAt
	if h.Addr == "" || at == nil {
		return
	}
	fail := func(msg string) {
		e := *at
		e.Msg = msg
		l.errs = append(l.errs, &e)
	}
	switch {
	case (h.Username == "") != (h.Password == ""):
		fail("username and password must be set together")
	case h.Username == "" && !isLoopbackAddr(h.Addr):
		fail(fmt.Sprintf("%s listens beyond loopback: a username and a password are required", h.Addr))
	case strings.ContainsAny(h.Username, ":\n\r"):
		fail("the username may not contain ':' or a line break")
	}
}

// loadSupervisord reads every section of a supervisord file set.
func (l *loader) loadSupervisord(watchDirs map[string]bool) (*Config, error) {
	var programs, groups, listeners []*srcSection
	for _, f := range l.files {
		for _, s := range f.sections {
			// [supervisord] and the like merge across files (supervisord
			// reads them with strict=False); a program or group defined
			// twice is an error.
			merge := s.name == "supervisord" || s.name == "include" || s.name == "inet_http_server" || s.name == "unix_http_server" || s.name == "supervisorctl"
			if prev, ok := l.sv.seen[s.name]; ok && !merge {
				l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: "[" + s.name + "]",
					Msg: fmt.Sprintf("section already defined at %s:%d", prev.file.path, prev.line)})
				continue
			}
			l.sv.seen[s.name] = s
			prefix, rest, _ := strings.Cut(s.name, ":")
			switch {
			case s.name == "supervisord" || s.name == "unix_http_server" || s.name == "inet_http_server" || s.name == "include":
				if f.index == 0 {
					continue // read by svMain
				}
				switch s.name {
				case "supervisord":
					l.svDaemon(s)
				case "inet_http_server":
					l.svInetHTTP(s)
				case "unix_http_server":
					l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: "[" + s.name + "]",
						Msg: "may only be in the main file (circlectl reads only that file to find the socket)"})
				case "include":
					l.warnf(s, s.line, "", "ignored: includes are only followed from the main file (as supervisord does)")
				}
			case s.name == "supervisorctl" || prefix == "ctlplugin" && rest != "":
				// supervisorctl's own settings.
			case prefix == "rpcinterface" && rest != "":
				if rest != "supervisor" {
					l.warnf(s, s.line, "", "supervisord RPC interface plugins are not supported by circled; section ignored")
				}
			case prefix == "program" && rest != "":
				programs = append(programs, s)
			case prefix == "group" && rest != "":
				groups = append(groups, s)
			case prefix == "eventlistener" && rest != "":
				listeners = append(listeners, s)
			case prefix == "fcgi-program" && rest != "":
				l.warnf(s, s.line, "", "FastCGI programs are not supported by circled; section ignored")
			default:
				msg := "unknown section"
				known := []string{"supervisord", "unix_http_server", "inet_http_server", "supervisorctl", "include"}
				if rest != "" || strings.Contains(s.name, ":") {
					if sg := suggest(prefix, []string{"program", "group", "eventlistener", "fcgi-program", "rpcinterface", "ctlplugin"}); sg != "" {
						msg += fmt.Sprintf("; did you mean [%s:%s]?", sg, rest)
					}
				} else if sg := suggest(s.name, known); sg != "" {
					msg += fmt.Sprintf("; did you mean [%s]?", sg)
				}
				l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: "[" + s.name + "]", Msg: msg})
			}
		}
	}
	l.svGlobalEnv()

	// Groups: each program they list becomes the watcher GROUP:PROGRAM.
	byName := map[string]*srcSection{}
	for _, p := range programs {
		byName[strings.TrimPrefix(p.name, "program:")] = p
	}
	type member struct {
		group    string
		priority int
	}
	memberOf := map[string][]member{}
	for _, g := range groups {
		name := strings.TrimPrefix(g.name, "group:")
		if err := checkProcessName(name); err != nil {
			l.errs = append(l.errs, &Error{File: g.file.path, Line: g.line, Key: "[" + g.name + "]", Msg: "group name: " + err.Error()})
			continue
		}
		keys, order := svKeys(g)
		prio := 999
		var list []string
		for _, kn := range order {
			k := keys[kn]
			v, err := l.svExpandCommon(g, k.value, nil)
			if err == nil {
				switch kn {
				case "programs":
					for _, p := range strings.Split(v, ",") {
						if p = strings.TrimSpace(p); p != "" {
							list = append(list, p)
						}
					}
				case "priority":
					prio, err = parseIntRange(v, -MaxPriority, MaxPriority)
				default:
					err = fmt.Errorf("%s", unknownMsg("key", kn, []string{"programs", "priority"}))
				}
			}
			if err != nil {
				l.errorf(g, k.line, k.name, "%v", err)
			}
		}
		if len(list) == 0 {
			l.warnf(g, g.line, "", "the group has no programs")
		}
		k := keys["programs"]
		for _, p := range list {
			if _, ok := byName[p]; !ok {
				l.errorf(g, k.line, k.name, "names unknown program %q", p)
				continue
			}
			if slices.ContainsFunc(memberOf[p], func(m member) bool { return m.group == name }) {
				continue
			}
			memberOf[p] = append(memberOf[p], member{name, prio})
		}
	}

	var watchers []*Watcher
	for _, p := range programs {
		name := strings.TrimPrefix(p.name, "program:")
		if ms := memberOf[name]; len(ms) > 0 {
			for _, m := range ms {
				if w := l.svProgram(p, name, m.group, &m.priority); w != nil {
					watchers = append(watchers, w)
				}
			}
			continue
		}
		if w := l.svProgram(p, name, "", nil); w != nil {
			watchers = append(watchers, w)
		}
	}
	// Event listeners: each is a watcher of its own (supervisord makes
	// each its own pool), named as the section.
	for _, s := range listeners {
		name := strings.TrimPrefix(s.name, "eventlistener:")
		if p, ok := byName[name]; ok {
			l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: "[" + s.name + "]",
				Msg: fmt.Sprintf("the name %q is already a program's (%s:%d)", name, p.file.path, p.line)})
			continue
		}
		if w := l.svProgram(s, name, "", nil); w != nil {
			watchers = append(watchers, w)
		}
	}
	sortWatchers(watchers)
	l.checkInetHTTP()
	cfg := &Config{File: l.main, Daemon: l.daemon, Watchers: watchers, Supervisord: l.sup}
	l.finish(cfg, watchDirs)
	cfg.Warnings = l.sortedWarnings()
	if err := l.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// svGlobalEnv builds the variables every program gets before its own.
func (l *loader) svGlobalEnv() {
	env := []envKV{{"SUPERVISOR_ENABLED", "1"}}
	switch d := l.daemon; {
	case d.Socket != "":
		env = append(env, envKV{"SUPERVISOR_SERVER_URL", "unix://" + d.Socket})
	case l.sup.InetHTTP.Addr != "":
		host, port, _ := net.SplitHostPort(l.sup.InetHTTP.Addr)
		if host == "" {
			host = "localhost"
		}
		env = append(env, envKV{"SUPERVISOR_SERVER_URL", "http://" + net.JoinHostPort(host, port)})
	}
	l.sv.env = append(env, l.sv.userEnv...)
}

// svProgram resolves one [program:x] section, as a member of group ("" =
// its own group) with the group's priority; nil when it has errors.
func (l *loader) svProgram(s *srcSection, prog, group string, groupPrio *int) *Watcher {
	nerr := len(l.errs)
	if err := checkProcessName(prog); err != nil {
		l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: "[" + s.name + "]", Msg: "program name: " + err.Error()})
		return nil
	}
	name, groupName := prog, prog
	if group != "" {
		name, groupName = group+":"+prog, group
	}
	w := l.defaultWatcher()
	w.Name, w.File, w.Line = name, s.file.path, s.line
	w.CopyEnv = true
	w.Flapping.Attempts = 0 // supervisord has no flapping detection
	w.ExitCodes = []int{0}
	w.RespawnMode, w.Respawn = "on-failure", true
	w.MinUptime = secs(1)
	w.MaxRetry = 3
	w.MaxFailedStarts = 4 // startretries + 1: the first try and startretries more
	w.GracefulTimeout = secs(10)
	w.StopChildren = false
	w.Priority = -999
	w.WorkingDir = l.sv.directory

	keys, order := svKeys(s)
	listener := strings.HasPrefix(s.name, "eventlistener:")
	for _, kn := range order {
		k := keys[kn]
		switch {
		case slices.Contains(svProgramKeys, kn):
		case listener && slices.Contains(svListenerKeys, kn):
		case slices.Contains(svIgnoredProgramKeys, kn):
			l.warnf(s, k.line, k.name, "supervisord setting not implemented by circled; ignored")
		default:
			cands := append(slices.Clone(svProgramKeys), svIgnoredProgramKeys...)
			if listener {
				cands = append(cands, svListenerKeys...)
			}
			l.errorf(s, k.line, k.name, "%s", unknownMsg("key", kn, cands))
		}
	}
	common := map[string]pyVal{
		"program_name": pyStr(prog), "group_name": pyStr(groupName),
		"host_node_name": pyStr(hostname()), "here": pyStr(hereOf(s)),
	}
	for k, v := range l.sv.expansions {
		common[k] = v
	}
	get := func(key string) (string, srcKey, bool) {
		k, ok := keys[key]
		if !ok {
			return "", k, false
		}
		v, err := pyExpand(k.value, common, nil, key)
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
			return "", k, false
		}
		return v, k, true
	}
	set := func(key string, fn func(v string) error) {
		if v, k, ok := get(key); ok {
			if err := fn(v); err != nil {
				l.errorf(s, k.line, k.name, "%v", err)
			}
		}
	}
	numprocs, start := 1, 0
	set("numprocs", func(v string) (err error) { numprocs, err = parseIntRange(v, 0, MaxProcesses); return })
	set("numprocs_start", func(v string) (err error) { start, err = parseIntRange(v, 0, MaxWIDOffset); return })
	w.NumProcesses = numprocs
	w.WIDOffset = start - 1
	common["numprocs"] = pyNum(numprocs)

	// Values that differ per process: process_num is a literal with one
	// process, else $(circle.wid) (padded alike).
	tok := &widUse{}
	perProc := func(key, v string) (string, error) {
		vals := common
		var t *widUse
		if numprocs == 1 {
			vals = maps2(common, "process_num", pyNum(start))
		} else {
			t = tok
		}
		return pyExpand(v, vals, t, key)
	}
	getProc := func(key string) (string, srcKey, bool) {
		k, ok := keys[key]
		if !ok {
			return "", k, false
		}
		v, err := perProc(key, k.value)
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
			return "", k, false
		}
		return v, k, true
	}

	if groupPrio != nil {
		w.Priority = -*groupPrio
		if v, k, ok := get("priority"); ok {
			if _, err := parseIntRange(v, -MaxPriority, MaxPriority); err != nil {
				l.errorf(s, k.line, k.name, "%v", err)
			}
			l.note(name, "priority (line %d): circled starts the programs of group %s together, at the group's priority", k.line, group)
		}
	} else {
		set("priority", func(v string) error {
			p, err := parseIntRange(v, -MaxPriority, MaxPriority)
			w.Priority = -p
			return err
		})
	}

	// command
	if v, k, ok := getProc("command"); ok {
		argv, err := splitCommand(v)
		switch {
		case err != nil:
			l.errorf(s, k.line, k.name, "%v", err)
		case len(argv) == 0:
			l.errorf(s, k.line, k.name, "must not be empty")
		default:
			w.Argv = argv
		}
	} else if _, present := keys["command"]; !present {
		l.errorf(s, s.line, "command", "required key is missing")
	}
	set("directory", func(v string) error {
		if v == "" {
			return fmt.Errorf("empty directory")
		}
		w.WorkingDir = absPath(hereOf(s), v)
		return nil
	})
	set("umask", func(v string) (err error) {
		if !posixProcessAttrs {
			return errNotSupported
		}
		w.Umask, err = parseOctal(v)
		return
	})
	set("autostart", func(v string) error { return setBool(&w.Autostart)(v) })
	set("autorestart", func(v string) error {
		switch strings.ToLower(v) {
		case "unexpected":
			w.RespawnMode = "on-failure"
		case "true", "yes", "on", "1":
			w.RespawnMode = "always"
		case "false", "no", "off", "0":
			w.RespawnMode = "never"
		default:
			return fmt.Errorf("invalid autorestart %q (want true, false or unexpected)", v)
		}
		w.Respawn = w.RespawnMode != "never"
		return nil
	})
	set("startsecs", func(v string) error {
		n, err := parseIntRange(v, 0, int(MaxDuration.Seconds()))
		w.MinUptime = secs(n)
		return err
	})
	set("startretries", func(v string) (err error) {
		w.MaxRetry, err = parseIntRange(v, 0, MaxRetries)
		w.MaxFailedStarts = w.MaxRetry + 1
		return
	})
	set("exitcodes", func(v string) (err error) { w.ExitCodes, err = parseExitCodes(v); return })
	set("stopsignal", func(v string) (err error) { w.StopSignal, err = ParseSignal(v); return })
	set("stopwaitsecs", func(v string) error {
		n, err := parseIntRange(v, 0, int(MaxGracefulTimeout.Seconds()))
		w.GracefulTimeout = secs(n)
		return err
	})
	stopAsGroup, killAsGroup := false, false
	killSet := false
	set("stopasgroup", func(v string) (err error) { stopAsGroup, err = parseBool(v); return })
	set("killasgroup", func(v string) (err error) { killSet = true; killAsGroup, err = parseBool(v); return })
	if !killSet {
		killAsGroup = stopAsGroup
	}
	if stopAsGroup && !killAsGroup {
		k := keys["killasgroup"]
		l.errorf(s, k.line, k.name, "cannot set stopasgroup = true and killasgroup = false")
	}
	w.StopChildren = stopAsGroup
	var userKey srcKey
	set("user", func(v string) error {
		if !posixProcessAttrs {
			return errNotSupported
		}
		userKey = keys["user"]
		u, id, err := l.lookupUser(v)
		if err == nil {
			w.User, w.UID = u, &id
		}
		return err
	})
	set("redirect_stderr", func(v string) error { return setBool(&w.RedirectStderr)(v) })
	if listener {
		l.svListener(s, w, keys, get)
	}

	// Environment: circled's (supervisord passes its own on), the global
	// variables, then the program's.
	env := map[string]string{}
	for k, v := range l.environ {
		env[k] = v
	}
	fromSection := map[string]bool{}
	for _, kv := range l.sv.env {
		env[kv.k], fromSection[kv.k] = kv.v, true
	}
	var own []envKV
	if k, ok := keys["environment"]; ok {
		v, err := perProc("environment", strings.ReplaceAll(k.value, "\n", " "))
		var kvs []envKV
		if err == nil {
			kvs, err = parseSVEnvironment(strings.ReplaceAll(v, WIDToken, widPlaceholder))
		}
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		}
		for i := range kvs {
			kvs[i].v = strings.ReplaceAll(kvs[i].v, widPlaceholder, WIDToken)
		}
		own = kvs
	}

	// Logs.
	l.svStream(s, w, keys, "stdout", &w.Stdout, getProc, get, name, numprocs)
	if w.RedirectStderr {
		if k, ok := keys["stderr_logfile"]; ok && !strings.EqualFold(k.value, "AUTO") && !strings.EqualFold(k.value, "NONE") {
			l.warnf(s, k.line, k.name, "ignored: redirect_stderr = true")
		}
	} else {
		l.svStream(s, w, keys, "stderr", &w.Stderr, getProc, get, name, numprocs)
	}

	// Process names, for display; SUPERVISOR_PROCESS_NAME when it can be
	// written with $(circle.wid).
	pn := "%(program_name)s"
	pnKey, pnSet := keys["process_name"]
	if pnSet {
		pn = pnKey.value
	} else {
		pnKey.line = s.line
	}
	if numprocs > 1 && !strings.Contains(pn, "%(process_num)") {
		l.errorf(s, pnKey.line, "process_name", "%%(process_num) must be present within process_name when numprocs > 1")
	}
	w.ProcessNames = make([]string, 0, numprocs)
	seenNames := map[string]bool{}
	for i := 0; i < numprocs && len(l.errs) == nerr; i++ {
		n, err := pyExpand(pn, maps2(common, "process_num", pyNum(start+i)), nil, "process_name")
		if err == nil {
			err = checkProcessName(n)
			if err == nil && seenNames[n] {
				err = fmt.Errorf("process name %q is used twice", n)
			}
		}
		if err != nil {
			l.errorf(s, pnKey.line, "process_name", "%v", err)
			break
		}
		seenNames[n] = true
		w.ProcessNames = append(w.ProcessNames, n)
	}
	if len(w.ProcessNames) == 0 {
		w.ProcessNames = nil // numprocs = 0
	}
	procEnv := []envKV{{"SUPERVISOR_GROUP_NAME", groupName}}
	if numprocs == 1 && len(w.ProcessNames) == 1 {
		procEnv = append(procEnv, envKV{"SUPERVISOR_PROCESS_NAME", w.ProcessNames[0]})
	} else if numprocs > 1 {
		t := *tok
		if n, err := pyExpand(pn, common, &t, "process_name"); err == nil {
			*tok = t
			procEnv = append(procEnv, envKV{"SUPERVISOR_PROCESS_NAME", n})
		} else {
			l.note(name, "SUPERVISOR_PROCESS_NAME is not set: process_name pads %%(process_num) unlike the command")
		}
	}
	own = append(procEnv, own...)
	for _, kv := range own {
		env[kv.k], fromSection[kv.k] = kv.v, true
	}
	env["CIRCLED_WATCHER"] = name
	w.WIDWidth = tok.width
	l.resolveCredentials(s, userKey, w, env, fromSection)
	w.Env = envList(env)

	if len(l.errs) > nerr {
		return nil
	}
	l.sv.infos = append(l.sv.infos, &svInfo{w: w, group: group, env: own})
	return w
}

// widPlaceholder stands for WIDToken while an environment value is split
// (it is made of the lexer's word characters).
const widPlaceholder = "CIRCLEDWIDTOKEN0x7f3a"

// svStream maps stdout_logfile (stderr_logfile) and its maxbytes and
// backups.
func (l *loader) svStream(s *srcSection, w *Watcher, keys map[string]srcKey, ch string, st *Stream,
	getProc, get func(string) (string, srcKey, bool), name string, numprocs int) {
	maxBytes, backups := int64(50<<20), 10
	if v, k, ok := get(ch + "_logfile_maxbytes"); ok {
		var err error
		if maxBytes, err = parseSizeMax(v, MaxLogBytes); err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		}
	}
	if v, k, ok := get(ch + "_logfile_backups"); ok {
		var err error
		if backups, err = parseIntRange(v, 0, MaxBackups); err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		}
	}
	file := "AUTO"
	if v, _, ok := getProc(ch + "_logfile"); ok {
		file = v
	} else if _, present := keys[ch+"_logfile"]; present {
		return // reported
	}
	switch strings.ToUpper(file) {
	case "NONE", "":
		st.Class = "null"
		return
	case "AUTO":
		base := strings.ReplaceAll(name, ":", "_")
		if numprocs > 1 {
			base += "_" + WIDToken
		}
		file = filepath.Join(l.sv.childlogdir, base+"-"+ch+"---"+l.sup.Identifier+".log")
		l.note(name, "%s_logfile = AUTO: %s (supervisord picks a new random name at each start)", ch, file)
	case "SYSLOG":
		st.Class = "stdout"
		l.note(name, "%s_logfile = syslog: circled writes it to its own output", ch)
		return
	}
	switch file {
	case "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "/dev/stderr", "/dev/fd/2", "/proc/self/fd/2":
		st.Class = "stdout"
		toStdout := strings.HasSuffix(file, "stdout") || strings.HasSuffix(file, "1")
		if toStdout != (ch == "stdout") {
			l.note(name, "%s_logfile = %s: circled writes a program's %s to its own %s", ch, file, ch, ch)
		}
		return
	}
	st.Class = "file"
	st.Filename = absPath(hereOf(s), file)
	st.MaxBytes = maxBytes
	st.BackupCount = backups
	if backups == 0 && maxBytes > 0 {
		st.BackupCount = 1
		l.note(name, "%s_logfile_backups = 0: circled keeps 1 backup", ch)
	}
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

func maps2(m map[string]pyVal, k string, v pyVal) map[string]pyVal {
	out := make(map[string]pyVal, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// hostname is %(host_node_name)s.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}

// sortWatchers orders watchers as Config.Watchers: descending priority,
// then name.
func sortWatchers(ws []*Watcher) {
	slices.SortStableFunc(ws, func(a, b *Watcher) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return strings.Compare(a.Name, b.Name)
	})
}
