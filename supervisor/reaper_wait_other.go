//go:build unix && !linux

package supervisor

import "context"

// waitExits: elsewhere Run sweeps on SIGCHLD.
func (r *Reaper) waitExits(ctx context.Context) bool { return false }
