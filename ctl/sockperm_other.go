//go:build !unix && !windows

package ctl

// checkSocketPath has nothing to check where there are no unix sockets.
func checkSocketPath(path string) error { return nil }
