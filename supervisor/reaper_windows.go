package supervisor

import (
	"context"
	"log/slog"
	"os/exec"

	"github.com/circle-supervisor/circle/watcher"
)

// Reaper on Windows has nothing to reap: it waits for each process in its
// own goroutine (watcher.DirectSpawner).
type Reaper struct{ watcher.DirectSpawner }

// NewReaper makes a Reaper.
func NewReaper(*slog.Logger) *Reaper { return &Reaper{} }

// Start implements watcher.Spawner.
func (r *Reaper) Start(cmd *exec.Cmd, onExit func(watcher.ExitStatus)) (int, error) {
	return r.DirectSpawner.Start(cmd, onExit)
}

// Run returns when ctx ends.
func (r *Reaper) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Sweep does nothing on Windows.
func (r *Reaper) Sweep() {}

// Reaped never fires on Windows.
func (r *Reaper) Reaped() <-chan struct{} { return nil }
