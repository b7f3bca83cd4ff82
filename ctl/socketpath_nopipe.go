//go:build !windows

package ctl

// pipePath reports whether p names a Windows named pipe; elsewhere
// nothing does, so a socket value is always a file path.
func pipePath(p string) (string, bool) { return p, false }
