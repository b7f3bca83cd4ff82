//go:build !windows

package config

// posixProcessAttrs says whether uid, gid, umask and rlimit_* can be
// honoured on this OS.
const posixProcessAttrs = true

// shellPrefix runs a shell=true watcher's command line.
var shellPrefix = []string{"/bin/sh", "-c"}

// backslashEscapes says whether a backslash escapes the next character when
// cmd and args are split (POSIX shell rules). On Windows it is a path
// separator and stays literal.
const backslashEscapes = true
