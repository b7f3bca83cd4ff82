package config

import (
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

var watcherKeys = []string{
	"cmd", "args", "numprocesses", "numprocess", "working_dir", "shell", "uid",
	"gid", "umask", "copy_env", "copy_path", "stop_signal", "stop_children",
	"graceful_timeout", "respawn", "max_retry", "autostart", "priority",
	"warmup_delay", "singleton", "critical", "min_uptime", "backoff_max",
	"redirect_stderr", "flapping.attempts", "flapping.window",
	"flapping.retry_in", "flapping.max_retry", "check_flapping",
}

// ignoredWatcherKeys are circus watcher keys circled does not implement;
// so is every hooks.* key.
var ignoredWatcherKeys = []string{
	"use_sockets", "virtualenv", "virtualenv_py_ver", "max_age",
	"max_age_variance", "shell_args", "send_hup", "close_child_stdin",
	"close_child_stdout", "close_child_stderr", "on_demand", "use_papa",
	"stdin_socket", "flapping.active",
}

var rlimitNames = []string{
	"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
	"nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}

var streamKeys = []string{
	"class", "filename", "max_bytes", "backup_count", "max_age", "compress",
	"rotate_when", "rotate_interval", "time_format", "file_mode",
}

// widKeys may contain $(circle.wid): the watcher substitutes it per process.
var widKeys = []string{"cmd", "args", "stdout_stream.filename", "stderr_stream.filename"}

var watcherAliases = map[string]string{"numprocess": "numprocesses"}

// allWatcherKeys are the did-you-mean candidates.
var allWatcherKeys = func() []string {
	var out []string
	for _, k := range watcherKeys {
		if _, alias := watcherAliases[k]; !alias {
			out = append(out, k)
		}
	}
	out = append(out, ignoredWatcherKeys...)
	for _, r := range rlimitNames {
		out = append(out, "rlimit_"+r)
	}
	for _, s := range streamKeys {
		out = append(out, "stdout_stream."+s, "stderr_stream."+s)
	}
	return out
}()

func (l *loader) resolveWatchers() []*Watcher {
	var out []*Watcher
	for _, s := range l.watchers {
		if w := l.resolveWatcher(s); w != nil {
			out = append(out, w)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority > out[j].Priority
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// checkEnvSections warns about [env:PATTERNS] sections matching no watcher
// (a likely typo) and reports bad patterns. A pattern without glob
// characters is looked up, so the cost is linear unless there are many
// glob patterns.
func (l *loader) checkEnvSections() {
	names := make(map[string]bool, len(l.watchers))
	for _, w := range l.watchers {
		_, name := classify(w.name)
		names[name] = true
	}
	for _, e := range l.envs {
		_, pats := classify(e.name)
		if strings.EqualFold(strings.TrimSpace(e.name), "env") {
			continue
		}
		matched := false
		for _, p := range strings.Split(pats, ",") {
			p = strings.TrimSpace(p)
			if _, err := path.Match(p, ""); err != nil {
				l.errs = append(l.errs, &Error{File: e.file.path, Line: e.line, Key: "[" + e.name + "]", Msg: fmt.Sprintf("bad pattern %q: %v", p, err)})
				matched = true
				continue
			}
			if p == "" || matched {
				continue
			}
			if !isGlob(p) {
				matched = names[p]
				continue
			}
			for name := range names {
				if matchName(p, name) {
					matched = true
					break
				}
			}
		}
		if !matched {
			l.warnf(e, e.line, "", "matches no watcher")
		}
	}
}

func matchName(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

func isGlob(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// envIndex finds the env sections that apply to a watcher without trying
// every section against every watcher.
type envIndex struct {
	global []int            // [env] sections
	exact  map[string][]int // watcher name -> [env:PATTERNS] naming it
	globs  []envGlob        // patterns with glob characters
}

type envGlob struct {
	idx int
	pat string
}

func (l *loader) buildEnvIndex() *envIndex {
	x := &envIndex{exact: map[string][]int{}}
	for i, e := range l.envs {
		if strings.EqualFold(strings.TrimSpace(e.name), "env") {
			x.global = append(x.global, i)
			continue
		}
		_, pats := classify(e.name)
		for _, p := range strings.Split(pats, ",") {
			switch p = strings.TrimSpace(p); {
			case p == "":
			case isGlob(p):
				x.globs = append(x.globs, envGlob{i, p})
			default:
				x.exact[p] = append(x.exact[p], i)
			}
		}
	}
	return x
}

// envSectionsFor lists the env sections that apply to watcher name: the
// [env] sections, then the [env:PATTERNS] ones, each in file order.
func (l *loader) envSectionsFor(name string) []*srcSection {
	if l.envIdx == nil {
		l.envIdx = l.buildEnvIndex()
	}
	x := l.envIdx
	idx := slices.Clone(x.exact[name])
	for _, g := range x.globs {
		if matchName(g.pat, name) {
			idx = append(idx, g.idx)
		}
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	out := make([]*srcSection, 0, len(x.global)+len(idx))
	for _, i := range x.global {
		out = append(out, l.envs[i])
	}
	for _, i := range idx {
		out = append(out, l.envs[i])
	}
	return out
}

// resolveWatcher builds one Watcher; nil when it has errors.
func (l *loader) resolveWatcher(s *srcSection) *Watcher {
	nerr := len(l.errs)
	_, name := classify(s.name)
	w := &Watcher{
		Name:            name,
		File:            s.file.path,
		Line:            s.line,
		Umask:           -1,
		StopSignal:      "TERM",
		StopChildren:    true,
		GracefulTimeout: l.daemon.GracefulTimeout,
		NumProcesses:    1,
		Respawn:         true,
		MaxRetry:        5,
		Autostart:       true,
		MinUptime:       time.Second,
		BackoffMax:      10 * time.Second,
		Flapping:        Flapping{Attempts: 5, Window: 10 * time.Second, RetryIn: 30 * time.Second, MaxRetry: 5},
		Stdout:          Stream{Class: "stdout", FileMode: DefaultFileMode},
		Stderr:          Stream{Class: "stdout", FileMode: DefaultFileMode},
	}

	// Sort the keys: known (canonical name -> key), ignored, unknown.
	keys := map[string]srcKey{}
	var order []string
	for _, k := range s.keys {
		lk := strings.ToLower(k.name)
		canon := lk
		if a, ok := watcherAliases[lk]; ok {
			canon = a
		}
		switch {
		case slices.Contains(watcherKeys, lk):
		case strings.HasPrefix(lk, "rlimit_"):
			if !slices.Contains(rlimitNames, lk[len("rlimit_"):]) {
				l.errorf(s, k.line, k.name, "%s", unknownMsg("resource limit", lk, allWatcherKeys))
				continue
			}
		case strings.HasPrefix(lk, "stdout_stream.") || strings.HasPrefix(lk, "stderr_stream."):
			_, sub, _ := strings.Cut(lk, ".")
			if !slices.Contains(streamKeys, sub) {
				l.warnf(s, k.line, k.name, "stream setting not implemented by circled; ignored")
				continue
			}
		case strings.HasPrefix(lk, "hooks.") || slices.Contains(ignoredWatcherKeys, lk):
			l.warnf(s, k.line, k.name, "circus setting not implemented by circled; ignored")
			continue
		default:
			l.errorf(s, k.line, k.name, "%s", unknownMsg("key", lk, allWatcherKeys))
			continue
		}
		if prev, ok := keys[canon]; ok {
			l.errorf(s, k.line, k.name, "%s is already set at line %d (as %s)", canon, prev.line, prev.name)
			continue
		}
		keys[canon] = k
		order = append(order, canon)
	}

	// copy_env and copy_path decide the base environment, so they expand
	// from circled's environment only.
	base := &expander{layers: []map[string]string{l.environ}}
	for _, c := range []string{"copy_env", "copy_path"} {
		k, ok := keys[c]
		if !ok {
			continue
		}
		v, err := base.expand(k.value)
		if err == nil {
			var b bool
			b, err = parseBool(v)
			if c == "copy_env" {
				w.CopyEnv = b
			} else {
				w.CopyPath = b
			}
		}
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		}
	}

	env := map[string]string{}
	switch {
	case w.CopyEnv:
		for k, v := range l.environ {
			env[k] = v
		}
	case w.CopyPath:
		if p, ok := l.environ["PATH"]; ok {
			env["PATH"] = p
		}
	}
	// [env] sections first, then [env:PATTERNS], each in file order.
	fromSection := map[string]bool{}
	for _, e := range l.envSectionsFor(name) {
		for _, k := range e.keys {
			ex := &expander{
				layers:    []map[string]string{env, l.environ},
				allowWID:  true,
				shellVars: true,
				warn:      func(msg string) { l.warnf(e, k.line, k.name, "%s", msg) },
			}
			v, err := ex.expand(k.value)
			if err != nil {
				l.errs = append(l.errs, &Error{File: e.file.path, Line: k.line, Key: keyName(e, k.name), Msg: fmt.Sprintf("%v (for watcher %q)", err, name)})
				continue
			}
			env[k.name] = v
			fromSection[k.name] = true
		}
	}
	env["CIRCLED_WATCHER"] = name
	w.Env = envList(env)

	var cmd, args string
	var cmdKey, argsKey srcKey
	var numSet *srcKey
	for _, canon := range order {
		k := keys[canon]
		if canon == "copy_env" || canon == "copy_path" {
			continue
		}
		ex := &expander{
			layers:   []map[string]string{env, l.environ},
			allowWID: slices.Contains(widKeys, canon),
			warn:     func(msg string) { l.warnf(s, k.line, k.name, "%s", msg) },
		}
		v, err := ex.expand(k.value)
		if err == nil {
			v = strings.TrimSpace(v)
			err = l.watcherValue(w, canon, v)
		}
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
			continue
		}
		switch canon {
		case "cmd":
			cmd, cmdKey = v, k
		case "args":
			args, argsKey = v, k
		case "numprocesses":
			numSet = &k
		}
	}

	for _, canon := range order {
		if k := keys[canon]; canon == "cmd" || canon == "args" {
			l.warnInlineComment(s, k, true, w.Shell)
		} else {
			l.warnInlineComment(s, k, false, false)
		}
	}

	// cmd and argv.
	switch {
	case cmdKey.name == "":
		if _, ok := keys["cmd"]; !ok {
			l.errorf(s, s.line, "cmd", "required key is missing")
		}
	case cmd == "":
		l.errorf(s, cmdKey.line, cmdKey.name, "must not be empty")
	case w.Shell:
		line := cmd
		if args != "" {
			line += " " + args
		}
		w.Argv = append(slices.Clone(shellPrefix), line)
	default:
		argv, err := splitCommand(cmd)
		if err != nil {
			l.errorf(s, cmdKey.line, cmdKey.name, "%v", err)
			break
		}
		if len(argv) == 0 {
			l.errorf(s, cmdKey.line, cmdKey.name, "must not be empty")
			break
		}
		if args != "" {
			more, err := splitCommand(args)
			if err != nil {
				l.errorf(s, argsKey.line, argsKey.name, "%v", err)
				break
			}
			argv = append(argv, more...)
		}
		w.Argv = argv
	}

	// circus's check_flapping = false turns flapping detection off:
	// Attempts 0 (watcher.Policy never flaps then), whatever
	// flapping.attempts says.
	if k, ok := keys["check_flapping"]; ok {
		if v, err := base.expand(k.value); err == nil {
			if on, err := parseBool(v); err == nil && !on {
				w.Flapping.Attempts = 0
				if a, ok := keys["flapping.attempts"]; ok {
					l.warnf(s, a.line, a.name, "ignored: check_flapping = false (line %d) turns flapping detection off", k.line)
				}
			}
		}
	}

	// The user's groups and variables. The uid and gid values may use the
	// env sections' variables, so this comes after them.
	l.resolveCredentials(s, keys["uid"], w, env, fromSection)
	w.Env = envList(env)

	if w.Singleton {
		if numSet != nil && w.NumProcesses > 1 {
			l.errorf(s, numSet.line, numSet.name, "%d processes for a singleton watcher (want at most 1)", w.NumProcesses)
		}
		w.NumProcesses = 1
	}
	l.checkStream(s, keys, "stdout_stream", &w.Stdout)
	l.checkStream(s, keys, "stderr_stream", &w.Stderr)
	sort.Slice(w.Rlimits, func(i, j int) bool { return w.Rlimits[i].Name < w.Rlimits[j].Name })

	if len(l.errs) > nerr {
		return nil
	}
	return w
}

// checkStream validates a stream once all its keys are known.
func (l *loader) checkStream(s *srcSection, keys map[string]srcKey, prefix string, st *Stream) {
	if (st.Class == "file" || st.Class == "timed") && st.Filename == "" {
		k, ok := keys[prefix+".class"]
		if !ok {
			return
		}
		l.errorf(s, k.line, k.name, "%s.filename is required for this class", prefix)
	}
	if st.Class == "timed" {
		if st.RotateWhen == "" {
			st.RotateWhen = "H"
		}
		if st.RotateInterval == 0 {
			st.RotateInterval = 1
		}
	}
	if k, ok := keys[prefix+".rotate_interval"]; ok && st.RotateInterval > 0 {
		when := st.RotateWhen
		if when == "" {
			when = "H" // the timed class's default
		}
		unit := rotateUnit(when)
		if max := int(MaxRotatePeriod / unit); st.RotateInterval > max {
			l.errorf(s, k.line, k.name, "%d is out of range for rotate_when = %s (1..%d: at most %s)", st.RotateInterval, when, max, humanDuration(MaxRotatePeriod))
		}
	}
}

// watcherValue parses one watcher key's expanded value into w.
func (l *loader) watcherValue(w *Watcher, key, v string) error {
	var err error
	if strings.HasPrefix(key, "rlimit_") {
		if !posixProcessAttrs {
			return errNotSupported
		}
		var n uint64
		n, err = parseRlimit(v)
		w.Rlimits = append(w.Rlimits, Rlimit{Name: key[len("rlimit_"):], Value: n})
		return err
	}
	if prefix, sub, ok := strings.Cut(key, "_stream."); ok {
		st := &w.Stdout
		if prefix == "stderr" {
			st = &w.Stderr
		}
		return l.streamValue(w, st, prefix == "stderr", sub, v)
	}
	switch key {
	case "cmd", "args":
		// assembled by the caller
	case "numprocesses":
		w.NumProcesses, err = parseIntRange(v, 0, MaxProcesses)
	case "working_dir":
		w.WorkingDir = absPath(l.mainDir, v)
	case "shell":
		w.Shell, err = parseBool(v)
	case "uid", "gid":
		if !posixProcessAttrs {
			return errNotSupported
		}
		var id int
		var u *User
		if key == "uid" {
			if u, id, err = l.lookupUser(v); err == nil {
				w.User, w.UID = u, &id
			}
		} else if id, err = l.lookupGroup(v); err == nil {
			w.GID = &id
		}
	case "umask":
		if !posixProcessAttrs {
			return errNotSupported
		}
		w.Umask, err = parseOctal(v)
	case "stop_signal":
		w.StopSignal, err = ParseSignal(v)
	case "stop_children":
		w.StopChildren, err = parseBool(v)
	case "graceful_timeout":
		w.GracefulTimeout, err = parseDurationMax(v, MaxGracefulTimeout)
	case "respawn":
		w.Respawn, err = parseBool(v)
	case "max_retry":
		w.MaxRetry, err = parseIntRange(v, -1, MaxRetries)
	case "autostart":
		w.Autostart, err = parseBool(v)
	case "priority":
		w.Priority, err = parseIntRange(v, -MaxPriority, MaxPriority)
	case "warmup_delay":
		w.WarmupDelay, err = parseDurationMax(v, MaxWarmupDelay)
	case "singleton":
		w.Singleton, err = parseBool(v)
	case "critical":
		w.Critical, err = parseBool(v)
	case "min_uptime":
		w.MinUptime, err = parseDurationMax(v, MaxDuration)
	case "backoff_max":
		w.BackoffMax, err = parseDurationMax(v, MaxDuration)
	case "redirect_stderr":
		var b bool
		b, err = parseBool(v)
		w.RedirectStderr = w.RedirectStderr || b
	case "flapping.attempts":
		w.Flapping.Attempts, err = parseIntRange(v, 1, MaxFlappingAttempts)
	case "flapping.window":
		w.Flapping.Window, err = parseDurationMax(v, MaxDuration)
	case "flapping.retry_in":
		w.Flapping.RetryIn, err = parseDurationMax(v, MaxDuration)
	case "flapping.max_retry":
		w.Flapping.MaxRetry, err = parseIntRange(v, -1, MaxRetries)
	case "check_flapping":
		// Applied by resolveWatcher once every key is read.
		_, err = parseBool(v)
	default:
		err = fmt.Errorf("internal error: unhandled key")
	}
	return err
}

// streamClasses maps circus class names (and circled's short names),
// lower-cased, to Stream.Class.
var streamClasses = map[string]string{
	"stdoutstream":            "stdout",
	"stdout":                  "stdout",
	"filestream":              "file",
	"file":                    "file",
	"timedrotatingfilestream": "timed",
	"timed":                   "timed",
	"nullstream":              "null",
	"null":                    "null",
}

func (l *loader) streamValue(w *Watcher, st *Stream, isStderr bool, key, v string) error {
	var err error
	switch key {
	case "class":
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
	case "filename":
		if v == "" {
			return fmt.Errorf("empty filename")
		}
		st.Filename = absPath(l.mainDir, v)
	case "max_bytes":
		st.MaxBytes, err = parseSizeMax(v, MaxLogBytes)
	case "backup_count":
		st.BackupCount, err = parseIntRange(v, 0, MaxBackups)
	case "max_age":
		st.MaxAge, err = parseIntRangeUnit(v, 0, MaxAgeDays, " days")
	case "compress":
		st.Compress, err = parseBool(v)
	case "rotate_when":
		u := strings.ToUpper(v)
		switch {
		case u == "S" || u == "M" || u == "H" || u == "D":
			st.RotateWhen = u
		case u == "MIDNIGHT":
			st.RotateWhen = "midnight"
		case len(u) == 2 && u[0] == 'W' && u[1] >= '0' && u[1] <= '6':
			st.RotateWhen = u
		default:
			err = fmt.Errorf("invalid rotate_when %q (want S, M, H, D, midnight or W0..W6)", v)
		}
	case "rotate_interval":
		// The bound for the unit is checked by checkStream, once
		// rotate_when is known; S (seconds) allows the most.
		st.RotateInterval, err = parseIntRange(v, 1, int(MaxRotatePeriod/time.Second))
	case "time_format":
		st.TimeFormat = v
	case "file_mode":
		var m int
		m, err = parseOctal(v)
		st.FileMode = os.FileMode(m)
	}
	return err
}

// rotateUnit is the period of one rotate_interval for rotate_when (as
// Python's TimedRotatingFileHandler: W0-W6 and midnight count weeks and
// days).
func rotateUnit(when string) time.Duration {
	switch when {
	case "S":
		return time.Second
	case "M":
		return time.Minute
	case "H":
		return time.Hour
	case "D", "midnight":
		return 24 * time.Hour
	}
	return 7 * 24 * time.Hour // W0..W6
}

func didYouMean(s string, cands []string) string {
	if sg := suggest(s, cands); sg != "" {
		return fmt.Sprintf("; did you mean %q?", sg)
	}
	return ""
}
