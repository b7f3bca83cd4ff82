//go:build !linux

package main

// clearInheritedSignalMask is Linux-only for now: elsewhere children get
// the mask circled started with.
func clearInheritedSignalMask() {}
