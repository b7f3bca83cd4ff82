package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// srcFile is one parsed file.
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
	value string // as read: trimmed, continuation lines joined with "\n"
	line  int
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

// parseSource parses one file the way Python's configparser (and so
// circus) reads it, in one pass that is linear in the size of the file:
//   - a line whose first non-blank character is ';' or '#' is a comment;
//     there are no inline comments (`cmd = echo a ; sleep 1` keeps its
//     `; sleep 1`);
//   - [name] starts a section (the name is what lies between the '[' and
//     the last ']' of the line, trimmed);
//   - key = value or key: value (the first '=' or ':' splits), key and
//     value trimmed; quotes are kept and backslashes are literal;
//   - a line indented with spaces, tabs or form feeds right after a key
//     (or its previous continuation line) continues the value: the value
//     gets a line break and the line as written, indentation included.
//     A blank line or a comment line ends the value;
//   - a UTF-8 byte order mark is skipped, "\r\n" is a line break.
//
// It reports, with their lines, what configparser would reject (keys
// outside a section, lines that are neither, duplicate sections, duplicate
// keys: case-insensitively except in env sections), what would be read
// differently elsewhere (quoted key names, values starting with ` or
// """), and NUL anywhere but in a comment. With any error the file is
// unusable and nil is returned.
func parseSource(path string, index int, data []byte) (*srcFile, []*Error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var (
		sf       = &srcFile{path: path, index: index}
		errs     []*Error
		cur      *srcSection // nil outside a section, or after a bad header
		inValue  bool        // the previous line was a key or its continuation
		lastKey  string      // the key inValue refers to, as written
		valIdx   = -1        // its index in cur.keys; -1 when it was refused
		cont     []string    // its continuation lines
		seen     = map[string]int{}
		seenKeys map[string]int
	)
	// endValue joins the continuation lines to the last key's value.
	endValue := func() {
		if len(cont) > 0 && valIdx >= 0 {
			k := &cur.keys[valIdx]
			k.value += "\n" + strings.Join(cont, "\n")
		}
		cont = cont[:0]
	}
	text := string(data)
	for n := 1; len(text) > 0; n++ {
		raw := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			raw, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		raw = strings.TrimSuffix(raw, "\r")
		if inValue && raw != "" && isIndent(raw[0]) {
			if strings.IndexByte(raw, 0) >= 0 {
				key := quoteNUL(lastKey)
				if cur != nil {
					key = "[" + cur.name + "] " + key
				}
				errs = append(errs, &Error{File: path, Line: n, Key: key, Msg: nulMsg})
			}
			cont = append(cont, raw) // Python multi-line continuation
			continue
		}
		if inValue {
			endValue()
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
				key = "[" + cur.name + "] " + quoteNUL(strings.TrimSpace(line[:idx]))
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
			if strings.EqualFold(name, "DEFAULT") || name == "" {
				errs = append(errs, &Error{File: path, Line: n, Key: "[" + name + "]", Msg: "section name not allowed"})
				cur = nil
				continue
			}
			if prev, ok := seen[rawName]; ok {
				errs = append(errs, &Error{File: path, Line: n, Key: "[" + name + "]", Msg: fmt.Sprintf("duplicate section (first at line %d)", prev)})
			} else {
				seen[rawName] = n
			}
			cur = &srcSection{file: sf, name: name, line: n}
			seenKeys = map[string]int{}
			sf.sections = append(sf.sections, cur)
			continue
		}
		idx := strings.IndexAny(line, "=:")
		if idx <= 0 {
			errs = append(errs, &Error{File: path, Line: n, Msg: fmt.Sprintf("expected [section] or key = value, got %q", line)})
			continue
		}
		inValue, valIdx = true, -1
		key := strings.TrimSpace(line[:idx])
		lastKey = key
		if cur == nil {
			errs = append(errs, &Error{File: path, Line: n, Key: key, Msg: "key outside any section"})
			continue
		}
		// Other ini readers give these a meaning configparser does not
		// (quoted and multi-line values).
		if key[0] == '"' || key[0] == '`' {
			errs = append(errs, &Error{File: path, Line: n, Key: key, Msg: "quoted key names are not supported"})
			continue
		}
		value := strings.TrimSpace(line[idx+1:])
		if strings.HasPrefix(value, "`") || strings.HasPrefix(value, `"""`) {
			errs = append(errs, &Error{File: path, Line: n, Key: "[" + cur.name + "] " + key, Msg: "a value may not start with ` or \"\"\" (quote it differently)"})
			continue
		}
		// circled's own keys are case-insensitive, env keys are not.
		dk := key
		if !isEnvSection(cur.name) {
			dk = strings.ToLower(key)
		}
		if prev, ok := seenKeys[dk]; ok {
			errs = append(errs, &Error{File: path, Line: n, Key: "[" + cur.name + "] " + key, Msg: fmt.Sprintf("duplicate key (first at line %d)", prev)})
			continue
		}
		seenKeys[dk] = n
		cur.keys = append(cur.keys, srcKey{name: key, value: value, line: n})
		valIdx = len(cur.keys) - 1
	}
	if inValue {
		endValue()
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return sf, nil
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
