package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"

	"gopkg.in/ini.v1"
)

// iniOptions makes ini.v1 read files the way Python's configparser (and so
// circus) does: no inline comments (`cmd = echo a ; sleep 1` keeps its
// `; sleep 1`), indented continuation lines, no backslash continuation,
// quotes kept, key case kept (env sections are case-sensitive; circled
// matches its own keys case-insensitively).
var iniOptions = ini.LoadOptions{
	IgnoreInlineComment:        true,
	AllowPythonMultilineValues: true,
	IgnoreContinuation:         true,
	PreserveSurroundedQuote:    true,
	KeyValueDelimiters:         "=:",
	ChildSectionDelimiter:      "\x00", // no parent/child key inheritance
}

// srcFile is one parsed file with the line numbers ini.v1 does not keep.
type srcFile struct {
	path     string
	index    int // 0 = main file, then include order
	sections []*srcSection
}

// srcSection is one section of a file, in file order.
type srcSection struct {
	file *srcFile
	name string // trimmed, as written
	line int
	keys []srcKey
}

// srcKey is one key = value of a section, in file order.
type srcKey struct {
	name  string // as written
	value string // as ini.v1 read it
	line  int
}

// scanSection and scanKey are what the line pre-scan finds.
type scanSection struct {
	raw  string // name between the brackets, untrimmed (ini.v1's key)
	line int
	keys map[string]int // key name as written -> line
}

// readSource reads and parses one file. Syntax errors are returned with
// their line; the file is then unusable.
func readSource(path string, index int) (*srcFile, []*Error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, []*Error{{File: path, Msg: readErrMsg(err)}}
	}
	return parseSource(path, index, data)
}

func readErrMsg(err error) string {
	var nr *NotRegularError
	if errors.As(err, &nr) {
		return "not a regular file: " + nr.Reason
	}
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

func parseSource(path string, index int, data []byte) (*srcFile, []*Error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	scanned, errs := scanLines(path, data)
	if len(errs) > 0 {
		return nil, errs
	}
	f, err := loadINI(data)
	if err != nil {
		return nil, []*Error{{File: path, Msg: "parse error: " + err.Error()}}
	}
	sf := &srcFile{path: path, index: index}
	for _, sc := range scanned {
		sec, err := f.GetSection(sc.raw)
		if err != nil { // the scan and ini.v1 disagree: refuse to guess
			return nil, []*Error{{File: path, Line: sc.line, Key: "[" + strings.TrimSpace(sc.raw) + "]", Msg: "section could not be parsed"}}
		}
		s := &srcSection{file: sf, name: strings.TrimSpace(sc.raw), line: sc.line}
		for _, k := range sec.Keys() {
			line, ok := sc.keys[k.Name()]
			if !ok {
				line = sc.line // a quoted key name ini.v1 unquoted
			}
			s.keys = append(s.keys, srcKey{name: k.Name(), value: k.Value(), line: line})
		}
		sf.sections = append(sf.sections, s)
	}
	return sf, nil
}

// loadINI runs ini.v1, turning a panic on hostile input into an error.
func loadINI(data []byte) (f *ini.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return ini.LoadSources(iniOptions, data)
}

// scanLines mirrors ini.v1's line handling (with iniOptions) to learn the
// line of every section header and key, and reports what configparser
// would reject: keys outside a section, lines that are not key = value,
// duplicate sections and duplicate keys.
func scanLines(path string, data []byte) ([]*scanSection, []*Error) {
	var (
		out      []*scanSection
		errs     []*Error
		cur      *scanSection
		inValue  bool // the previous line was a key or its continuation
		lastKey  string
		seen     = map[string]int{}
		seenKeys map[string]int
	)
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		n := i + 1
		raw = strings.TrimSuffix(raw, "\r")
		if inValue && raw != "" && isIndent(raw[0]) {
			if strings.IndexByte(raw, 0) >= 0 {
				key := quoteNUL(lastKey)
				if cur != nil {
					key = "[" + strings.TrimSpace(cur.raw) + "] " + key
				}
				errs = append(errs, &Error{File: path, Line: n, Key: key, Msg: nulMsg})
			}
			continue // Python multi-line continuation
		}
		inValue = false
		line := strings.TrimLeftFunc(raw, unicode.IsSpace)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.IndexByte(line, 0) >= 0 {
			// NUL cannot reach a process (argv, environment), a path
			// or a name: refuse it anywhere, comments aside.
			key := ""
			switch idx := strings.IndexAny(line, "=:"); {
			case line[0] == '[':
				key = "[" + quoteNUL(strings.TrimSpace(strings.TrimSuffix(line[1:], "]"))) + "]"
			case idx > 0 && cur != nil:
				key = "[" + strings.TrimSpace(cur.raw) + "] " + quoteNUL(strings.TrimSpace(line[:idx]))
			case idx > 0:
				key = quoteNUL(strings.TrimSpace(line[:idx]))
			}
			errs = append(errs, &Error{File: path, Line: n, Key: key, Msg: nulMsg})
		}
		if line[0] == '[' {
			end := strings.LastIndexByte(line, ']')
			if end < 0 {
				errs = append(errs, &Error{File: path, Line: n, Msg: fmt.Sprintf("unclosed section header %q", line)})
				cur = nil
				continue
			}
			rawName := line[1:end]
			name := strings.TrimSpace(rawName)
			if strings.EqualFold(name, ini.DefaultSection) || name == "" {
				errs = append(errs, &Error{File: path, Line: n, Key: "[" + name + "]", Msg: "section name not allowed"})
				cur = nil
				continue
			}
			if prev, ok := seen[rawName]; ok {
				errs = append(errs, &Error{File: path, Line: n, Key: "[" + name + "]", Msg: fmt.Sprintf("duplicate section (first at line %d)", prev)})
			} else {
				seen[rawName] = n
			}
			cur = &scanSection{raw: rawName, line: n, keys: map[string]int{}}
			seenKeys = map[string]int{}
			out = append(out, cur)
			continue
		}
		idx := strings.IndexAny(line, "=:")
		if idx <= 0 {
			errs = append(errs, &Error{File: path, Line: n, Msg: fmt.Sprintf("expected [section] or key = value, got %q", line)})
			continue
		}
		inValue = true
		lastKey = strings.TrimSpace(line[:idx])
		if cur == nil {
			errs = append(errs, &Error{File: path, Line: n, Key: strings.TrimSpace(line[:idx]), Msg: "key outside any section"})
			continue
		}
		key := strings.TrimSpace(line[:idx])
		// ini.v1 gives these a meaning configparser does not (quoted and
		// multi-line values) and could swallow the lines that follow.
		if key[0] == '"' || key[0] == '`' {
			errs = append(errs, &Error{File: path, Line: n, Key: key, Msg: "quoted key names are not supported"})
			continue
		}
		if v := strings.TrimSpace(line[idx+1:]); strings.HasPrefix(v, "`") || strings.HasPrefix(v, `"""`) {
			errs = append(errs, &Error{File: path, Line: n, Key: "[" + strings.TrimSpace(cur.raw) + "] " + key, Msg: "a value may not start with ` or \"\"\" (quote it differently)"})
			continue
		}
		if _, ok := cur.keys[key]; !ok {
			cur.keys[key] = n
		}
		// circled's own keys are case-insensitive, env keys are not.
		dk := key
		if !isEnvSection(strings.TrimSpace(cur.raw)) {
			dk = strings.ToLower(key)
		}
		if prev, ok := seenKeys[dk]; ok {
			errs = append(errs, &Error{File: path, Line: n, Key: "[" + strings.TrimSpace(cur.raw) + "] " + key, Msg: fmt.Sprintf("duplicate key (first at line %d)", prev)})
		} else {
			seenKeys[dk] = n
		}
	}
	return out, errs
}

func isIndent(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

// sectionKind classifies a section name (prefixes match case-insensitively).
type sectionKind int

const (
	secUnknown sectionKind = iota
	secDaemon
	secWatcher
	secEnv
	secPlugin
	secSocket
)

func classify(name string) (sectionKind, string) {
	lower := strings.ToLower(name)
	switch {
	case lower == "circled" || lower == "circus":
		return secDaemon, ""
	case lower == "env":
		return secEnv, ""
	}
	prefix, rest, ok := strings.Cut(name, ":")
	if !ok {
		return secUnknown, ""
	}
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(strings.TrimSpace(prefix)) {
	case "watcher":
		return secWatcher, rest
	case "env":
		return secEnv, rest
	case "plugin":
		return secPlugin, rest
	case "socket":
		return secSocket, rest
	}
	return secUnknown, ""
}

func isEnvSection(name string) bool {
	k, _ := classify(name)
	return k == secEnv
}
