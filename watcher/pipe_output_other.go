//go:build !linux

package watcher

import "os"

// outputPipe makes a child's output pipe (see pipe_linux.go).
func outputPipe() (r, w *os.File, err error) { return os.Pipe() }
