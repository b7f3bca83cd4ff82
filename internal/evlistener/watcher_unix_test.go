//go:build unix

package evlistener

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/watcher"
)

// The pool plugs into the watcher's seams as they are (Spec.Stdin,
// Spec.Stdout as a Sink): a listener run by a real watcher dies with an
// event in flight, the watcher restarts it, and the new process gets the
// event. (Only this test imports the watcher; the package does not.)
func TestUnderWatcher(t *testing.T) {
	py := needPython(t)
	b := NewBus("")
	defer b.Close()
	p, _ := newPool(t, b, "crash", 10, "PROCESS_STATE_EXITED")
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	script, err := filepath.Abs(filepath.Join("testdata", "listener.py"))
	if err != nil {
		t.Fatal(err)
	}
	stderr := &teeSink{}
	spec := watcher.Spec{
		Name:            "crash",
		Argv:            []string{py, script},
		Env:             append(os.Environ(), "PYTHONUTF8=1", "RECORD="+rec, "MODE=dieonce", "MARK="+filepath.Join(dir, "mark")),
		Umask:           -1,
		StopSignal:      "TERM",
		GracefulTimeout: 10 * time.Second,
		NumProcesses:    1,
		Policy:          watcher.Policy{Respawn: true, MinUptime: 100 * time.Millisecond, BackoffMax: time.Second, MaxRetry: -1},
		Stdin:           p.Stdin,
		Stdout:          p.Stdout(nil),
		Stderr:          stderr,
	}
	var _ watcher.Sink = spec.Stdout
	w := watcher.New(spec, watcher.DirectSpawner{}, slog.New(slog.DiscardHandler), nil)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Start(ctx, true); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Stop(ctx, true); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("listener stderr:\n%s", stderr.String())
		}
	}()
	waitState(t, p, 1, Ready)
	b.Publish(exited("web", 1234))
	rs := waitRecords(t, rec, 2)
	if rs[0].pid == rs[1].pid || rs[0].line != rs[1].line || rs[1].payload != exited("web", 1234).Payload {
		t.Errorf("records %+v: want the same event in the first and the restarted listener", rs)
	}
	waitState(t, p, 1, Ready)
	if p.Buffered() != 0 {
		t.Errorf("%d events still buffered", p.Buffered())
	}
}
