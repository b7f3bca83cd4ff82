package supervisor

import (
	"context"
	"fmt"
	"os"
)

// Handover is a prepared live upgrade (Unix only).
type Handover struct {
	State *UpgradeState
	Files []*os.File
}

// Abort does nothing on Windows.
func (h *Handover) Abort() {}

// Format is the format of State.
func (h *Handover) Format() int { return h.State.Format }

// PrepareUpgradeFor always fails on Windows (PrepareUpgrade).
func (s *Supervisor) PrepareUpgradeFor(ctx context.Context, formats []int) (*Handover, error) {
	return s.PrepareUpgrade(ctx)
}

// PrepareUpgrade always fails on Windows: a process cannot execute
// another binary in place there.
func (s *Supervisor) PrepareUpgrade(ctx context.Context) (*Handover, error) {
	return nil, fmt.Errorf("%w: on Windows a process cannot execute a new binary in place; restart the service instead (its Job Objects stop and restart the processes)", ErrUpgrade)
}

// adoptEntry is not reached on Windows (no upgrade state).
func (s *Supervisor) adoptEntry(e *entry, uw *UpgradeWatcher) {}

func (s *Supervisor) reenterCgroup(u *UpgradeState) {}
