//go:build windows

package config

// posixProcessAttrs says whether uid, gid, umask and rlimit_* can be
// honoured on this OS.
const posixProcessAttrs = false

// shellPrefix runs a shell=true watcher's command line.
var shellPrefix = []string{"cmd.exe", "/C"}

// backslashEscapes says whether a backslash escapes the next character when
// cmd and args are split. On Windows it is a path separator and stays
// literal.
const backslashEscapes = false
