//go:build unix && !linux

package main

import "os"

// stateFile puts data in an unlinked temporary file.
func stateFile(dir string, data []byte) (*os.File, error) { return stateTempFile(dir, data) }

// withEmptySigmask runs f (the Go runtime's threads block no signal
// outside Linux's inherited mask case).
func withEmptySigmask(f func()) { f() }
