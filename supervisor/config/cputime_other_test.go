//go:build !unix

package config

import "time"

// cpuTime is not measured here: loadTime falls back to the wall clock.
func cpuTime() (time.Duration, bool) { return 0, false }
