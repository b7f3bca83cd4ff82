package config

import (
	"errors"
	"fmt"
	"strings"
)

// expander performs circled's substitutions on one value.
//
//   - $(circle.env.X) (prefix case-insensitive; circle, circled or circus):
//     X looked up in layers, exact key first, then case-insensitively.
//     Unknown X is an error.
//   - $(circle.wid) in any spelling, and circus's legacy $WID: normalised
//     to WIDToken when allowWID, an error otherwise.
//   - $(circle.sockets.X): where sockets is set (cmd and args), X must be
//     a [socket:X] section: SocketToken(X), reported to useSocket; an
//     unknown X is an error. Elsewhere a warning, left as is.
//   - any other $(circle.…): an error. $(…) without such a prefix (a shell
//     command substitution) is left alone.
//   - with shellVars (env section values only): $NAME and ${NAME}, unknown
//     names expanding to "" like a shell.
type expander struct {
	layers    []map[string]string
	allowWID  bool
	shellVars bool
	warn      func(msg string)
	// sockets are the config's sockets by name, when $(circle.sockets.X)
	// may appear (cmd and args); useSocket learns each one used.
	sockets   map[string]Socket
	useSocket func(name string)
}

func (e *expander) expand(v string) (string, error) {
	if !strings.Contains(v, "$") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		c := v[i]
		if c != '$' || i+1 == len(v) {
			b.WriteByte(c)
			i++
			continue
		}
		rest := v[i:]
		switch {
		case strings.HasPrefix(rest, "$("):
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				b.WriteString("$(")
				i += 2
				continue
			}
			ref := rest[:end+1]
			out, handled, err := e.reference(ref, rest[2:end])
			if err != nil {
				return "", err
			}
			if !handled {
				b.WriteString("$(")
				i += 2
				continue
			}
			b.WriteString(out)
			i += len(ref)
		case strings.HasPrefix(rest, "$WID") && (len(rest) == 4 || !isIdent(rest[4])):
			if !e.allowWID {
				return "", fmt.Errorf("$WID is only allowed in cmd, args, env values and stream filenames")
			}
			b.WriteString(WIDToken)
			i += 4
		case e.shellVars && rest[1] == '{':
			end := strings.IndexByte(rest, '}')
			name := ""
			if end > 0 {
				name = rest[2:end]
			}
			if !validName(name) {
				b.WriteByte(c)
				i++
				continue
			}
			val, _ := lookupEnvExact(name, e.layers)
			b.WriteString(val)
			i += end + 1
		case e.shellVars && isIdentStart(rest[1]):
			j := 2
			for j < len(rest) && isIdent(rest[j]) {
				j++
			}
			val, _ := lookupEnvExact(rest[1:j], e.layers)
			b.WriteString(val)
			i += j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// reference resolves the inside of one $(…); handled is false when it is
// not circled's to resolve.
func (e *expander) reference(ref, inner string) (out string, handled bool, err error) {
	prefix, rest, _ := strings.Cut(inner, ".")
	switch strings.ToLower(prefix) {
	case "circle", "circled", "circus":
	default:
		return "", false, nil
	}
	if strings.EqualFold(rest, "wid") {
		if !e.allowWID {
			return "", true, fmt.Errorf("%s is only allowed in cmd, args, env values and stream filenames", ref)
		}
		return WIDToken, true, nil
	}
	kind, name, _ := strings.Cut(rest, ".")
	switch {
	case strings.EqualFold(kind, "env") && name != "":
		if v, ok := lookupEnvFold(name, e.layers...); ok {
			return v, true, nil
		}
		return "", true, fmt.Errorf("unknown variable %s: %s is not in circled's environment nor in the watcher's env", ref, name)
	case strings.EqualFold(kind, "sockets"):
		if e.sockets == nil {
			if e.warn != nil {
				e.warn(fmt.Sprintf("%s: socket references are only replaced in cmd and args; left as is", ref))
			}
			return ref, true, nil
		}
		if _, ok := e.sockets[name]; !ok {
			names := make([]string, 0, len(e.sockets))
			for n := range e.sockets {
				names = append(names, n)
			}
			msg := fmt.Sprintf("unknown socket %q in %s (no [socket:%s] section)", name, ref, name)
			if sg := suggest(name, names); sg != "" {
				msg += fmt.Sprintf("; did you mean %q?", sg)
			}
			return "", true, errors.New(msg)
		}
		if e.useSocket != nil {
			e.useSocket(name)
		}
		return SocketToken(name), true, nil
	}
	return "", true, fmt.Errorf("unknown reference %s (want $(circle.env.NAME) or $(circle.wid))", ref)
}

func lookupEnvExact(name string, layers []map[string]string) (string, bool) {
	for _, l := range layers {
		if v, ok := l[name]; ok {
			return v, true
		}
	}
	return "", false
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func validName(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdent(s[i]) {
			return false
		}
	}
	return true
}
