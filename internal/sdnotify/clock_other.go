//go:build !linux

package sdnotify

// monotonicUsec: systemd runs only on Linux, so other systems send no
// MONOTONIC_USEC.
func monotonicUsec() (uint64, bool) { return 0, false }
