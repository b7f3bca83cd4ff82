//go:build unix && !linux

package main

// markRangeCloexec: no close_range here; closeInheritedFDs lists /dev/fd.
func markRangeCloexec(int) bool { return false }
