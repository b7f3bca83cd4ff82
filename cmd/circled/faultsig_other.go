//go:build unix && !linux

package main

import "os"

// osFaultSignals: none beyond the portable list outside Linux.
var osFaultSignals []os.Signal
