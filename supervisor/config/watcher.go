package config

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

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
	w := l.defaultWatcher()
	w.Name, w.File, w.Line = name, s.file.path, s.line

	// Sort the keys: known (canonical name -> key), ignored, unknown.
	keys := map[string]srcKey{}
	var order []string
	for _, k := range s.keys {
		lk := strings.ToLower(k.name)
		canon := lk
		if wk, ok := watcherByName[lk]; ok {
			canon = wk.Name
		}
		switch {
		case watcherByName[lk] != nil:
		case strings.HasPrefix(lk, "rlimit_"):
			if !slices.Contains(rlimitNames, lk[len("rlimit_"):]) {
				l.errorf(s, k.line, k.name, "%s", unknownMsg("resource limit", lk, allWatcherKeys))
				continue
			}
		case strings.HasPrefix(lk, "stdout_stream.") || strings.HasPrefix(lk, "stderr_stream."):
			_, sub, _ := strings.Cut(lk, ".")
			if streamByName[sub] == nil {
				l.warnf(s, k.line, k.name, "stream setting not implemented by circled; ignored")
				continue
			}
		case strings.HasPrefix(lk, "hooks."):
			l.warnf(s, k.line, k.name, "hook not implemented by circled (its hooks are %s); ignored", hookKeyList)
			continue
		case slices.Contains(circusWatcherKeys, lk):
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
	fromSection := map[string]bool{}
	// env_file files first, in order; they may use circled's environment
	// ($(circle.env.X)) in their paths.
	if k, ok := keys["env_file"]; ok {
		v, err := base.expand(k.value)
		if err == nil {
			err = l.watcherValue(w, "env_file", strings.TrimSpace(v))
		}
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		} else {
			l.readEnvFiles(s, k, w.EnvFiles, env, fromSection)
		}
	}
	// [env] sections next, then [env:PATTERNS], each in file order.
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
	usedSockets := map[string]bool{}
	var numSet *srcKey
	for _, canon := range order {
		k := keys[canon]
		if canon == "copy_env" || canon == "copy_path" || canon == "env_file" {
			continue
		}
		ex := &expander{
			layers:   []map[string]string{env, l.environ},
			allowWID: widKey(canon),
			warn:     func(msg string) { l.warnf(s, k.line, k.name, "%s", msg) },
		}
		if canon == "cmd" || canon == "args" {
			ex.sockets = l.sockets
			ex.useSocket = func(name string) { usedSockets[name] = true }
		}
		v, err := ex.expand(k.value)
		if err == nil {
			v = strings.TrimSpace(v)
			err = l.watcherValue(w, canon, v)
		}
		var wo warnOnly
		if errors.As(err, &wo) {
			l.warnf(s, k.line, k.name, "%s", wo.Msg)
			continue
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
	if k, ok := keys["process_names"]; ok && w.ProcessNames != nil && len(w.ProcessNames) != w.NumProcesses {
		l.errorf(s, k.line, k.name, "%d names for %d processes (want one per process)", len(w.ProcessNames), w.NumProcesses)
	}
	l.resolveWatcherSockets(s, keys, w, usedSockets)
	if k, ok := keys["eventlistener.buffer_size"]; ok && w.EventListener != nil && w.EventListener.Events == nil {
		l.errorf(s, k.line, k.name, "needs eventlistener.events")
	}
	l.checkReadiness(s, keys, w)
	l.checkStream(s, keys, "stdout_stream", &w.Stdout)
	l.checkStream(s, keys, "stderr_stream", &w.Stderr)
	sort.Slice(w.Rlimits, func(i, j int) bool { return w.Rlimits[i].Name < w.Rlimits[j].Name })

	if len(l.errs) > nerr {
		return nil
	}
	return w
}

// checkReadiness checks the keys of issue 15 that depend on each other,
// once all are read, and records where depends_on is for
// checkDependencies.
func (l *loader) checkReadiness(s *srcSection, keys map[string]srcKey, w *Watcher) {
	if k, ok := keys["watchdog"]; ok && w.Watchdog > 0 && !w.Ready.Notify {
		l.errorf(s, k.line, k.name, "needs ready.notify = true (the process pings with sd_notify WATCHDOG=1)")
	}
	if k, ok := keys["send_hup"]; ok {
		if r, ok := keys["reload_signal"]; ok {
			l.errorf(s, k.line, k.name, "reload_signal is set too (line %d): keep one (send_hup = true is reload_signal = HUP)", r.line)
		}
	}
	if w.RespawnMode == "on-failure" && w.ExitCodes == nil {
		w.ExitCodes = []int{0}
	}
	if k, ok := keys["depends_on"]; ok {
		if l.depAt == nil {
			l.depAt = map[string]*Error{}
		}
		l.depAt[w.Name] = &Error{File: s.file.path, Line: k.line, Key: keyName(s, k.name)}
	}
}

// checkDependencies checks depends_on across the watchers: every name is
// a watcher of the config, the graph has no cycle (each cycle is reported
// once, whole, at the depends_on of its member that comes first in the
// files), and a completed dependency has respawn = never. ws are the
// watchers without errors; a dependency on a watcher with errors is left
// alone (its own error is reported).
func (l *loader) checkDependencies(ws []*Watcher) {
	if len(l.depAt) == 0 {
		return
	}
	byName := make(map[string]*Watcher, len(ws))
	for _, w := range ws {
		byName[w.Name] = w
	}
	fail := func(name, format string, args ...any) {
		e := *l.depAt[name]
		e.Msg = fmt.Sprintf(format, args...)
		l.errs = append(l.errs, &e)
	}
	// The watchers in file order (sections were read in file order).
	var order []*Watcher
	for _, s := range l.watchers {
		_, name := classify(s.name)
		if w := byName[name]; w != nil && l.depAt[name] != nil {
			order = append(order, w)
		}
	}
	for _, w := range order {
		for _, d := range w.DependsOn {
			if _, ok := l.watcherAt[d.Name]; ok {
				if dw := byName[d.Name]; dw != nil && d.Condition == DependCompleted && dw.RespawnMode != "never" {
					fail(w.Name, "%s:completed needs respawn = never in [watcher:%s] (it has respawn = %s, so it never completes)", d.Name, d.Name, dw.RespawnMode)
				}
				continue
			}
			msg := fmt.Sprintf("unknown watcher %q", d.Name)
			if i := strings.LastIndexByte(d.Name, ':'); i >= 0 && l.watcherAt[d.Name[:i]] != nil {
				msg = fmt.Sprintf("unknown condition %q in %q (want started, ready or completed)", d.Name[i+1:], d.Name)
			} else if sg := suggest(d.Name, l.watcherNames()); sg != "" {
				msg += fmt.Sprintf("; did you mean %q?", sg)
			}
			fail(w.Name, "%s", msg)
		}
	}

	// Cycles: a depth-first search in file order.
	const (
		unseen = iota
		onPath
		done
	)
	state := make(map[string]int, len(order))
	pos := make(map[string]int, len(order)) // file order of the watchers with depends_on
	for i, w := range order {
		pos[w.Name] = i
	}
	var path []string
	reported := map[string]bool{}
	var visit func(w *Watcher)
	visit = func(w *Watcher) {
		state[w.Name] = onPath
		path = append(path, w.Name)
		for _, d := range w.DependsOn {
			dw := byName[d.Name]
			if dw == nil {
				continue
			}
			switch state[d.Name] {
			case unseen:
				visit(dw)
			case onPath:
				i := slices.Index(path, d.Name)
				l.reportCycle(slices.Clone(path[i:]), pos, reported, fail)
			}
		}
		path = path[:len(path)-1]
		state[w.Name] = done
	}
	for _, w := range order {
		if state[w.Name] == unseen {
			visit(w)
		}
	}
}

// reportCycle reports the cycle (its members, each depending on the next,
// the last on the first) once, starting at the member that comes first
// in the files, at that member's depends_on.
func (l *loader) reportCycle(cycle []string, pos map[string]int, reported map[string]bool, fail func(name, format string, args ...any)) {
	first := 0
	for i, n := range cycle {
		if pos[n] < pos[cycle[first]] {
			first = i
		}
	}
	cycle = append(cycle[first:], cycle[:first]...)
	key := strings.Join(cycle, "\x00")
	if reported[key] {
		return
	}
	reported[key] = true
	msg := "dependency cycle: " + strings.Join(cycle, " -> ") + " -> " + cycle[0]
	var where []string
	for _, n := range cycle[1:] {
		e := l.depAt[n]
		where = append(where, fmt.Sprintf("%s's depends_on is at %s:%d", n, e.File, e.Line))
	}
	if len(where) > 0 {
		msg += " (" + strings.Join(where, ", ") + ")"
	}
	fail(cycle[0], "%s", msg)
}

// watcherNames lists the names of every watcher section, for
// suggestions.
func (l *loader) watcherNames() []string {
	if l.names == nil {
		l.names = make([]string, 0, len(l.watcherAt))
		for n := range l.watcherAt {
			l.names = append(l.names, n)
		}
		slices.Sort(l.names)
	}
	return l.names
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

// widKey says whether key (canonical) may contain $(circle.wid).
func widKey(key string) bool {
	if wk, ok := watcherByName[key]; ok {
		return wk.WID
	}
	if _, sub, ok := strings.Cut(key, "_stream."); ok {
		return streamByName[sub] != nil && streamByName[sub].WID
	}
	return false
}

// watcherValue parses one watcher key's expanded value into w, through
// the key tables.
func (l *loader) watcherValue(w *Watcher, key, v string) error {
	if strings.HasPrefix(key, "rlimit_") {
		if !posixProcessAttrs {
			return errNotSupported
		}
		n, err := parseRlimit(v)
		w.Rlimits = append(w.Rlimits, Rlimit{Name: key[len("rlimit_"):], Value: n})
		return err
	}
	if prefix, sub, ok := strings.Cut(key, "_stream."); ok {
		st := &w.Stdout
		if prefix == "stderr" {
			st = &w.Stderr
		}
		return streamByName[sub].set(l, w, st, prefix == "stderr", v)
	}
	wk := watcherByName[key]
	switch {
	case wk.POSIX && !posixProcessAttrs:
		return errNotSupported
	case len(wk.OS) > 0 && !slices.Contains(wk.OS, runtime.GOOS):
		return errOnlyOn(wk.OS)
	case wk.set == nil:
		return nil // cmd and args: assembled by the caller
	}
	return wk.set(l, w, v)
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

// resolveWatcherSockets sets w.Sockets: every socket with use_sockets,
// else those cmd and args name, sorted by name.
func (l *loader) resolveWatcherSockets(s *srcSection, keys map[string]srcKey, w *Watcher, used map[string]bool) {
	w.Sockets = nil
	for name, sk := range l.sockets {
		if w.UseSockets || used[name] {
			w.Sockets = append(w.Sockets, sk)
		}
	}
	slices.SortFunc(w.Sockets, func(a, b Socket) int { return strings.Compare(a.Name, b.Name) })
	if k, ok := keys["use_sockets"]; ok && w.UseSockets && len(l.sockets) == 0 && len(l.socketSecs) == 0 {
		l.warnf(s, k.line, k.name, "the config has no [socket:NAME] section")
	}
}

// hookKeyList names the hooks.* keys circled implements, for messages.
var hookKeyList = "hooks." + strings.Join(HookNames, ", hooks.") + " and hooks.timeout"
