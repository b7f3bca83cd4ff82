//go:build windows && realwindows

package watcher

// Real Windows only (go test -tags realwindows): Wine 8 does not deliver
// CTRL_BREAK to another process group.

import (
	"context"
	"testing"
	"time"
)

// A graceful stop delivers CTRL_BREAK: the Go helper's default handler
// exits at once, long before graceful_timeout would terminate the job.
func TestRealWindowsCtrlBreakStopsGracefully(t *testing.T) {
	spec := testSpec(t, "brk", "sleep", 1)
	spec.GracefulTimeout = 20 * time.Second
	w := startWatcher(t, spec)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("stop took %s: CTRL_BREAK not delivered, the job was terminated after graceful_timeout", el)
	}
}
