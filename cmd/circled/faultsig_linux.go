package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// osFaultSignals are the Linux-only signals that crash a Go program when
// another process sends them.
var osFaultSignals = []os.Signal{unix.SIGSTKFLT}
