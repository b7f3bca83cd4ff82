package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf8"
)

// envFileVar is one assignment of an env file.
type envFileVar struct {
	key, value string
	line       int
}

// envFileError is a syntax error at a line of an env file.
type envFileError struct {
	line int
	msg  string
}

func (e *envFileError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// parseEnvFile parses systemd's EnvironmentFile= syntax (systemd's
// parse_env_file): KEY=VALUE assignments, one a line; blank lines and
// lines starting with # or ; are comments (a backslash at the end of a
// comment continues it); an "export " prefix is accepted; whitespace
// around the key and before the value is dropped, and after an unquoted
// value too. In the value, 'single quotes' keep everything literally
// (newlines included), "double quotes" keep everything but \" \\ \` \$
// (the character) and a backslash-newline (nothing), and outside quotes a
// backslash escapes the next character (a backslash-newline continues the
// line). Quoted and unquoted parts concatenate. Keys are shell names
// ([A-Za-z_][A-Za-z0-9_]*); values must be valid UTF-8 without NUL.
func parseEnvFile(data []byte) ([]envFileVar, error) {
	if !utf8.Valid(data) {
		line := 1 + strings.Count(string(data[:invalidUTF8At(data)]), "\n")
		return nil, &envFileError{line, "not valid UTF-8"}
	}
	s := string(data)
	var out []envFileVar
	line := 1
	i := 0
	for i < len(s) {
		// Start of a line: skip blanks.
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v') {
			i++
		}
		if i == len(s) {
			break
		}
		switch c := s[i]; {
		case c == '\n':
			i++
			line++
			continue
		case c == '#' || c == ';':
			for i < len(s) && s[i] != '\n' {
				if s[i] == '\\' && i+1 < len(s) {
					if s[i+1] == '\n' {
						line++
					}
					i++
				}
				i++
			}
			continue
		}
		start := line
		// The key, up to '='.
		j := i
		for j < len(s) && s[j] != '=' && s[j] != '\n' {
			j++
		}
		if j == len(s) || s[j] == '\n' {
			return nil, &envFileError{start, fmt.Sprintf("%q has no = (want KEY=VALUE)", strings.TrimSpace(s[i:j]))}
		}
		key := strings.TrimSpace(s[i:j])
		if rest, ok := strings.CutPrefix(key, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			key = strings.TrimSpace(rest)
		}
		if !validName(key) {
			return nil, &envFileError{start, fmt.Sprintf("invalid variable name %q (want letters, digits and _, not starting with a digit)", key)}
		}
		i = j + 1
		// Blanks before the value.
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v') {
			i++
		}
		var b strings.Builder
		trailing := 0 // unquoted whitespace at the end of b, dropped at the end
	value:
		for i < len(s) {
			c := s[i]
			switch c {
			case '\n':
				break value
			case '\'':
				end := strings.IndexByte(s[i+1:], '\'')
				if end < 0 {
					return nil, &envFileError{start, "unterminated single quote"}
				}
				q := s[i+1 : i+1+end]
				line += strings.Count(q, "\n")
				b.WriteString(q)
				trailing = 0
				i += end + 2
			case '"':
				i++
				closed := false
				for i < len(s) {
					d := s[i]
					if d == '"' {
						closed = true
						i++
						break
					}
					if d == '\\' && i+1 < len(s) {
						e := s[i+1]
						switch {
						case e == '\n':
							line++
						case strings.IndexByte("\"\\`$", e) >= 0:
							b.WriteByte(e)
						default:
							b.WriteByte('\\')
							b.WriteByte(e)
						}
						i += 2
						continue
					}
					if d == '\n' {
						line++
					}
					b.WriteByte(d)
					i++
				}
				if !closed {
					return nil, &envFileError{start, "unterminated double quote"}
				}
				trailing = 0
			case '\\':
				if i+1 < len(s) {
					if s[i+1] == '\n' {
						line++
					} else {
						b.WriteByte(s[i+1])
					}
					i += 2
				} else {
					i++
				}
				trailing = 0
			default:
				b.WriteByte(c)
				if c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' {
					trailing++
				} else {
					trailing = 0
				}
				i++
			}
		}
		v := b.String()
		v = v[:len(v)-trailing]
		if strings.IndexByte(v, 0) >= 0 {
			return nil, &envFileError{start, fmt.Sprintf("the value of %s contains a NUL byte", key)}
		}
		out = append(out, envFileVar{key, v, start})
		if len(out) > MaxEnvFileVars {
			return nil, &envFileError{start, fmt.Sprintf("more than %d variables", MaxEnvFileVars)}
		}
	}
	return out, nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// readEnvFiles reads a watcher's env_file files into env, in order (a
// later file wins), marking each variable in set. Errors and warnings
// are reported against the env_file key k of section s, or the env
// file's own line for a syntax error. It records every file (read or
// missing) in l.envFiles.
func (l *loader) readEnvFiles(s *srcSection, k srcKey, files []EnvFile, env map[string]string, set map[string]bool) {
	key := keyName(s, k.name)
	for _, f := range files {
		if l.envFiles == nil {
			l.envFiles = map[string]bool{}
		}
		l.envFiles[f.Path] = true
		data, err := ReadFile(f.Path)
		if err == nil && len(data) > MaxEnvFileSize {
			err = fmt.Errorf("file is %d bytes, larger than the maximum of %d (1 MiB)", len(data), MaxEnvFileSize)
		}
		var nr *NotRegularError
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist) && f.Optional:
			continue
		case errors.Is(err, fs.ErrNotExist):
			l.errorf(s, k.line, k.name, "%s does not exist (a leading - makes an env file optional)", f.Path)
			continue
		case errors.As(err, &nr):
			l.errorf(s, k.line, k.name, "%v", err)
			continue
		default:
			l.errorf(s, k.line, k.name, "%s: %s", f.Path, readErrMsg(err))
			continue
		}
		vars, err := parseEnvFile(data)
		if err != nil {
			var ee *envFileError
			if errors.As(err, &ee) {
				l.errs = append(l.errs, &Error{File: f.Path, Line: ee.line, Key: key, Msg: ee.msg + fmt.Sprintf(" (env_file at %s:%d)", s.file.path, k.line)})
			} else {
				l.errorf(s, k.line, k.name, "%s: %v", f.Path, err)
			}
			continue
		}
		for _, v := range vars {
			env[v.key] = v.value
			set[v.key] = true
		}
	}
}
