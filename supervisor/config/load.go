package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// loader accumulates the state of one Load or ReadDaemon.
type loader struct {
	opts    Options
	environ map[string]string
	main    string
	mainDir string
	files   []*srcFile
	errs    []*Error
	warns   []Warning

	daemon    Daemon
	daemonSet map[string]srcLoc // canonical daemon key -> where it was set
	includes  []includeSpec     // from the main file
	hasInc    bool              // the main file has include or include_dir

	watchers  []*srcSection
	watcherAt map[string]*srcSection // watcher name -> its section
	envs      []*srcSection
	envIdx    *envIndex // built from envs once they are all known

	depAt map[string]*Error // watcher name -> where its depends_on is (Msg empty)
	names []string          // every watcher name, sorted (watcherNames)

	socketSecs []*srcSection     // [socket:NAME] sections, in file order
	sockets    map[string]Socket // resolved, by name
	envFiles   map[string]bool   // every env_file path named
	genv       map[string]string // globalEnv, once computed

	inetAt *Error              // where the TCP listener's address was set (Msg empty)
	sup    SupervisordSettings // Config.Supervisord
	sv     *svState            // a supervisord file: its state (supervisord.go)
}

type srcLoc struct {
	file string
	line int
}

type includeSpec struct {
	dir  bool // include_dir rather than include
	val  string
	sec  *srcSection
	line int
	key  string
}

func newLoader(path string, opts Options) (*loader, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return &loader{
		opts:      opts,
		environ:   envMap(opts.Environ),
		main:      abs,
		mainDir:   filepath.Dir(abs),
		daemonSet: map[string]srcLoc{},
		daemon:    defaultDaemon(nil),
	}, nil
}

func keyName(s *srcSection, k string) string { return "[" + s.name + "] " + k }

func (l *loader) errorf(s *srcSection, line int, key, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: s.file.path, Line: line, Key: keyName(s, key), Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) warnf(s *srcSection, line int, key, format string, args ...any) {
	k := "[" + s.name + "]"
	if key != "" {
		k = keyName(s, key)
	}
	l.warns = append(l.warns, Warning{File: s.file.path, Line: line, Key: k, Msg: fmt.Sprintf(format, args...)})
}

// result joins the errors found, in file and line order, without repeats.
func (l *loader) result() error {
	if len(l.errs) == 0 {
		return nil
	}
	order := l.fileOrder()
	slices.SortStableFunc(l.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(order(a.File), order(b.File)), cmp.Compare(a.Line, b.Line))
	})
	seen := map[Error]bool{}
	var out []error
	for _, e := range l.errs {
		if !seen[*e] {
			seen[*e] = true
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

func (l *loader) sortedWarnings() []Warning {
	order := l.fileOrder()
	slices.SortStableFunc(l.warns, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(order(a.File), order(b.File)), cmp.Compare(a.Line, b.Line))
	})
	seen := map[Warning]bool{}
	var out []Warning
	for _, w := range l.warns {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

func (l *loader) fileOrder() func(string) int {
	idx := map[string]int{}
	for i, f := range l.files {
		idx[f.path] = i
	}
	return func(p string) int {
		if i, ok := idx[p]; ok {
			return i
		}
		return len(idx)
	}
}

// ReadDaemon reads only the [circled] (or [circus]) section of the main
// file, so that circlectl can learn the socket path without validating
// watchers or following includes. $(circle.env.X) in it expands from this
// process's environment. Included files cannot set socket, so the answer is
// the same as Load's.
func ReadDaemon(path string) (Daemon, error) {
	l, err := newLoader(path, Options{Environ: os.Environ()})
	if err != nil {
		return Daemon{}, err
	}
	l.readMain()
	return l.daemon, l.result()
}

// readMain reads the main file and its daemon sections.
func (l *loader) readMain() *srcFile {
	f, errs := readSource(l.main, 0)
	l.errs = append(l.errs, errs...)
	if f == nil {
		return nil
	}
	l.files = append(l.files, f)
	if isSupervisordFile(f) {
		l.svMain(f)
		return f
	}
	for _, s := range f.sections {
		if k, _ := classify(s.name); k == secDaemon {
			l.daemonSection(s, true)
		}
	}
	return f
}

// daemonSection applies one [circled]/[circus] section. Sections of
// included files merge into the main file's (later files win, with a
// warning), but may not set socket (circlectl reads only the main file)
// and their include/include_dir are not followed.
func (l *loader) daemonSection(s *srcSection, isMain bool) {
	inSection := map[string]int{}
	for _, k := range s.keys {
		name := strings.ToLower(k.name)
		if slices.Contains(circusDaemonKeys, name) {
			l.warnf(s, k.line, k.name, "circus setting not implemented by circled; ignored")
			continue
		}
		dk, ok := daemonByName[name]
		if !ok {
			l.errorf(s, k.line, k.name, "%s", unknownMsg("key", name, daemonCandidates))
			continue
		}
		canon := dk.Name
		if prev, ok := inSection[canon]; ok {
			l.errorf(s, k.line, k.name, "%s is already set at line %d", canon, prev)
			continue
		}
		inSection[canon] = k.line
		if !isMain {
			switch canon {
			case "include", "include_dir":
				l.warnf(s, k.line, k.name, "ignored: includes are only followed from the main file")
				continue
			case "socket":
				l.errorf(s, k.line, k.name, "socket may only be set in the main file (circlectl reads only that file)")
				continue
			}
		}
		if prev, ok := l.daemonSet[canon]; ok && canon != "include" && canon != "include_dir" {
			l.warnf(s, k.line, k.name, "overrides the value set at %s:%d", prev.file, prev.line)
		}
		l.daemonSet[canon] = srcLoc{s.file.path, k.line}

		l.warnInlineComment(s, k, false, false)
		if canon == "include" || canon == "include_dir" {
			l.hasInc = true
			for _, v := range strings.Fields(k.value) {
				l.includes = append(l.includes, includeSpec{dir: canon == "include_dir", val: v, sec: s, line: k.line, key: k.name})
			}
			continue
		}
		ex := &expander{layers: []map[string]string{l.environ}}
		v, err := ex.expand(k.value)
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
			continue
		}
		if dk.POSIX && !posixProcessAttrs {
			err = errNotSupported
		} else {
			err = dk.set(l, &l.daemon, strings.TrimSpace(v))
		}
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		} else if canon == "inet_http_addr" {
			l.inetAt = &Error{File: s.file.path, Line: k.line, Key: keyName(s, k.name)}
		}
	}
}

var errNotSupported = errors.New("not supported on " + runtime.GOOS)

// errOnlyOn is the error of a key that works only on the systems oses
// ("not supported on darwin (only on linux, windows)").
func errOnlyOn(oses []string) error {
	return fmt.Errorf("%w (only on %s)", errNotSupported, strings.Join(oses, ", "))
}

// Load reads the main file at path, the files it includes, and returns the
// resolved, validated configuration. The error, when not nil, joins one
// *Error per problem found (all of them, not just the first).
//
// Merge order is the main file, then the included files sorted by path; a
// file matched twice is read once, and the main file is never re-included.
// Includes are followed only from the main file: an included file's
// [circled]/[circus] section merges into the main one (later files win),
// but its include and include_dir are ignored with a warning. When the
// main file has neither include nor include_dir, a conf.d directory beside
// it is included if it exists (an explicit empty "include =" disables
// that).
func Load(path string, opts Options) (*Config, error) {
	l, err := newLoader(path, opts)
	if err != nil {
		return nil, errors.Join(err)
	}
	return l.load()
}

func (l *loader) load() (*Config, error) {
	mainFile := l.readMain()
	if mainFile == nil {
		return nil, l.result()
	}
	watchDirs := map[string]bool{l.mainDir: true}
	l.readIncluded(watchDirs)
	if l.sv != nil {
		return l.loadSupervisord(watchDirs)
	}
	for _, f := range l.files {
		for _, s := range f.sections {
			l.section(s)
		}
	}
	cfg := &Config{File: l.main}
	cfg.Sockets = l.resolveSockets()
	cfg.Watchers = l.resolveWatchers()
	l.finish(cfg, watchDirs)
	l.checkDependencies(cfg.Watchers)
	l.checkEnvSections()
	l.checkInetHTTP()
	cfg.Daemon, cfg.Supervisord = l.daemon, l.sup
	cfg.Warnings = l.sortedWarnings()
	if err := l.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// finish fills in the files read and the directories to watch.
func (l *loader) finish(cfg *Config, watchDirs map[string]bool) {
	for _, f := range l.files {
		cfg.Files = append(cfg.Files, f.path)
	}
	// env_file files, after the config files: a reload compares their
	// bytes too, and the config watch sees their directories.
	for p := range l.envFiles {
		cfg.EnvFiles = append(cfg.EnvFiles, p)
		if d := filepath.Dir(p); isDir(d) {
			watchDirs[d] = true
		}
	}
	sort.Strings(cfg.EnvFiles)
	for _, p := range cfg.EnvFiles {
		if !slices.Contains(cfg.Files, p) {
			cfg.Files = append(cfg.Files, p)
		}
	}
	for d := range watchDirs {
		cfg.WatchDirs = append(cfg.WatchDirs, d)
	}
	sort.Strings(cfg.WatchDirs)
}

// readIncluded reads and parses the included files.
func (l *loader) readIncluded(watchDirs map[string]bool) {
	for _, p := range l.includedFiles(watchDirs) {
		data, err := ReadFile(p)
		var nr *NotRegularError
		switch {
		case errors.As(err, &nr):
			// Replaced since includedFiles looked at it: skip it the same way.
			l.skipped(p, "not a regular file: "+nr.Reason)
			continue
		case errors.Is(err, fs.ErrNotExist):
			l.skipped(p, "removed while the config was read")
			continue
		case err != nil:
			l.errs = append(l.errs, &Error{File: p, Msg: readErrMsg(err)})
			continue
		}
		f, errs := parseSource(p, len(l.files), data)
		l.errs = append(l.errs, errs...)
		if f != nil {
			l.files = append(l.files, f)
		}
	}
}

// section dispatches one section of any file (pass one).
func (l *loader) section(s *srcSection) {
	kind, name := classify(s.name)
	switch kind {
	case secDaemon:
		if s.file.index > 0 {
			l.daemonSection(s, false)
		}
	case secWatcher:
		if err := CheckWatcherName(name); err != nil {
			l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: "[" + s.name + "]", Msg: err.Error()})
			return
		}
		if o, ok := l.watcherAt[name]; ok {
			l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: "[" + s.name + "]",
				Msg: fmt.Sprintf("watcher %q is already defined at %s:%d", name, o.file.path, o.line)})
			return
		}
		if l.watcherAt == nil {
			l.watcherAt = map[string]*srcSection{}
		}
		l.watcherAt[name] = s
		l.watchers = append(l.watchers, s)
	case secEnv:
		if s.name != "env" && strings.TrimSpace(name) == "" {
			l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: "[" + s.name + "]", Msg: "empty watcher pattern"})
			return
		}
		if err := checkEnvPatterns(name); err != nil {
			l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: "[" + s.name + "]", Msg: err.Error()})
			return
		}
		l.envs = append(l.envs, s)
		for _, k := range s.keys {
			l.warnInlineComment(s, k, false, false)
		}
	case secPlugin:
		l.warnf(s, s.line, "", "circus plugins are not supported by circled; section ignored")
	case secSocket:
		l.socketSection(s, name)
	default:
		msg := "unknown section"
		prefix, rest, ok := strings.Cut(s.name, ":")
		if ok {
			if sg := suggest(prefix, []string{"watcher", "env", "plugin", "socket"}); sg != "" {
				msg += fmt.Sprintf("; did you mean [%s:%s]?", sg, rest)
			}
		} else if sg := suggest(s.name, []string{"circled", "circus", "env"}); sg != "" {
			msg += fmt.Sprintf("; did you mean [%s]?", sg)
		}
		l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: "[" + s.name + "]", Msg: msg})
	}
}

// includedFiles resolves the main file's include and include_dir (or the
// default conf.d) to the sorted, deduplicated list of files to read, and
// records the directories to watch.
func (l *loader) includedFiles(watchDirs map[string]bool) []string {
	specs := l.includes
	if !l.hasInc {
		if d := filepath.Join(l.mainDir, "conf.d"); isDir(d) {
			specs = []includeSpec{{dir: true, val: d}}
		}
	}
	seen := map[string]bool{fileID(l.main): true}
	var out []string
	add := func(p string) {
		fi, err := os.Stat(p) // never blocks, not even on a FIFO
		switch {
		case err != nil:
			if r := openFailure(err); r != "" {
				l.skipped(p, "not a regular file: "+r)
			} else if errors.Is(err, fs.ErrNotExist) {
				l.skipped(p, "removed while the config was read")
			} else {
				l.errs = append(l.errs, &Error{File: p, Msg: readErrMsg(err)})
			}
			return
		case !fi.Mode().IsRegular():
			l.skipped(p, "not a regular file: "+describeMode(fi.Mode()))
			return
		}
		if id := fileID(p); !seen[id] {
			seen[id] = true
			out = append(out, p)
		}
	}
	for _, sp := range specs {
		p := absPath(l.mainDir, sp.val)
		if sp.dir {
			if !isDir(p) {
				l.warnf(sp.sec, sp.line, sp.key, "directory %s does not exist", p)
				continue
			}
			watchDirs[p] = true
			ents, err := os.ReadDir(p)
			if err != nil {
				if sp.sec == nil { // the default conf.d
					l.errs = append(l.errs, &Error{File: p, Msg: readErrMsg(err)})
				} else {
					l.errorf(sp.sec, sp.line, sp.key, "%s: %v", p, readErrMsg(err))
				}
				continue
			}
			for _, e := range ents {
				if n := e.Name(); strings.HasSuffix(n, ".ini") && !strings.HasPrefix(n, ".") {
					add(filepath.Join(p, n))
				}
			}
			continue
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			l.errorf(sp.sec, sp.line, sp.key, "bad pattern %q: %v", sp.val, err)
			continue
		}
		dirs, _ := filepath.Glob(filepath.Dir(p))
		for _, d := range dirs {
			if isDir(d) {
				watchDirs[d] = true
			}
		}
		n := 0
		for _, m := range matches {
			// Like Python's glob (circus), * does not match a leading dot.
			if !strings.HasPrefix(filepath.Base(m), ".") {
				add(m)
				n++
			}
		}
		if n == 0 {
			l.warnf(sp.sec, sp.line, sp.key, "%q matches no file", sp.val)
		}
	}
	sort.Strings(out)
	return out
}

// skipped reports an included file that is not read: only regular files
// are (after following symlinks).
func (l *loader) skipped(p, reason string) {
	l.warns = append(l.warns, Warning{File: p, Msg: "skipped: " + reason})
}

// fileID identifies a file through symlinks, for deduplication.
func fileID(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
