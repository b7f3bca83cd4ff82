//go:build unix && !linux

package main

import "strconv"

// leftChildren: only Linux has child subreapers; elsewhere orphans go to
// init, so nothing re-parents to circled unless it is PID 1.
func leftChildren() []int { return nil }

// describeProc is the pid: no /proc to read a command line from.
func describeProc(pid int) string { return strconv.Itoa(pid) }
