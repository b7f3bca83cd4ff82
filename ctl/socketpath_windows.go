package ctl

import "strings"

// pipePrefix starts every local named pipe path.
const pipePrefix = `\\.\pipe\`

// defaultSocketPath is the named pipe circled listens on by default.
func defaultSocketPath() string { return pipePrefix + "circled" }

// pipePath turns a --socket value into a named pipe path: `\\.\pipe\NAME`
// (or `//./pipe/NAME`) as it is, and a bare NAME (no slash, backslash or
// colon) as `\\.\pipe\NAME`. Anything else is a file path: ok is false, and
// Listen and the client then refuse it, since on Windows the control
// endpoint is always a named pipe.
func pipePath(p string) (string, bool) {
	if q := strings.ReplaceAll(p, "/", `\`); len(q) > len(pipePrefix) && strings.EqualFold(q[:len(pipePrefix)], pipePrefix) {
		return pipePrefix + q[len(pipePrefix):], true
	}
	if p != "" && !strings.ContainsAny(p, `/\:`) {
		return pipePrefix + p, true
	}
	return p, false
}

// notPipeError refuses a socket value that is a file path.
type notPipeError struct{ path string }

func (e *notPipeError) Error() string {
	return e.path + ` is not a named pipe: on windows the control socket is \\.\pipe\NAME (or just NAME)`
}
