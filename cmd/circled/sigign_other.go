//go:build unix && !linux

package main

import "syscall"

// inheritedIgnored: without /proc, rely on signal.Ignored alone.
func inheritedIgnored(syscall.Signal) bool { return false }
