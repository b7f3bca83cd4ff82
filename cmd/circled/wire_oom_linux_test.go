//go:build linux

package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/limits"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// An OOM kill under memory_max = 32MB is oom in the exit event (reason
// oom, signal KILL), in circled_process_exits_total (code="oom",
// signal="KILL") and in status's LAST-EXIT column.
func TestWireLimitsOOMEventAndMetrics(t *testing.T) {
	needLimits(t, limits.Limits{MemoryMax: 32 << 20}, "memory")
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the memory hog is a Python one-liner")
	}
	dir := t.TempDir()
	p := startCircled(t, dir, `[watcher:hog]
cmd = `+py+` -c "import time; b = [b'x' * (1 << 20) for _ in range(2048)]; print('survived', flush=True); time.sleep(300)"
memory_max = 32MB
respawn = false
`)
	p.up()
	testhelper.Eventually(t, waitTimeout, "the hog to end", func() bool {
		_, ok := p.lastExit("hog")
		return ok
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := p.eventLines(ctx, "--json", "--since", "1h", "hog")
	for {
		l := nextLine(t, lines, waitTimeout)
		var ev ctl.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if ev.Type != "exit" {
			continue
		}
		if ev.Signal != "KILL" || ev.Reason != "oom" {
			t.Fatalf("the hog's exit event %q: want signal KILL, reason oom", l)
		}
		break
	}
	cancel()
	code, body := httpGet(t, socketClient(p.socket), "http://circled/metrics")
	if want := `circled_process_exits_total{code="oom",signal="KILL",watcher="hog"} 1`; code != 200 || !strings.Contains(body, want) {
		t.Fatalf("/metrics: %d, want %s in:\n%s", code, want, body)
	}
	if out := p.mustCtl("status", "hog"); !strings.Contains(out, " oom") {
		t.Fatalf("status does not say oom:\n%s", out)
	}
	p.quit()
}
