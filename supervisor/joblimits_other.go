//go:build !windows

package supervisor

import "github.com/circle-supervisor/circle/internal/limits"

// jobLimits is nil: Job Objects are Windows's.
func jobLimits(limits.Limits) func(wid int, job uintptr) error { return nil }
