package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

type result struct {
	code           int
	stdout, stderr string
}

// logsF runs circlectl logs -f in the background until ctx ends and
// waits until the daemon follows.
func logsF(t *testing.T, ctx context.Context, f *ctltest.Fake, sock string, args ...string) (*testhelper.SyncBuffer, <-chan result) {
	t.Helper()
	out, errb := &testhelper.SyncBuffer{}, &testhelper.SyncBuffer{}
	done := make(chan result, 1)
	go func() {
		code := run(ctx, append([]string{"--socket", sock, "logs", "-f"}, args...), out, errb)
		done <- result{code, out.String(), errb.String()}
	}()
	testhelper.Eventually(t, 30*time.Second, "the daemon to follow", func() bool { return f.Followers() == 1 })
	return out, done
}

func waitExit(t *testing.T, done <-chan result, what string) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatalf("circlectl logs -f did not exit after %s", what)
		return result{}
	}
}

// A new line shows on its own, while circlectl still follows: nothing is
// logged after it, so output that circlectl buffers instead of writing
// line by line never shows (the 30 s deadline is for that bug, not a
// latency target). Ctrl-C exits 0.
func TestLogsFollowInterrupt(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := startDaemon(t, f)
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	out, done := logsF(t, ctx, f, sock, "-n", "1", "web")
	f.Log("web", "stdout", "hello")
	testhelper.Eventually(t, 30*time.Second, "the new line, with nothing logged after it", func() bool { return strings.HasSuffix(out.String(), "web.1 | hello\n") })
	select {
	case r := <-done:
		t.Fatalf("circlectl logs -f exited before Ctrl-C: %+v", r)
	default:
	}
	interrupt() // what Ctrl-C does to run's ctx
	r := waitExit(t, done, "Ctrl-C")
	if r.code != 0 || r.stderr != "" || r.stdout != "web.1 | oops 2\nweb.1 | hello\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// -f exits 0 when the watcher is removed.
func TestLogsFollowWatcherRemoved(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := startDaemon(t, f)
	_, done := logsF(t, context.Background(), f, sock, "-n", "0", "--stream", "stderr", "web")
	f.Log("web", "stdout", "not shown")
	f.Log("web", "stderr", "bye")
	f.RemoveWatcher("web")
	r := waitExit(t, done, "the watcher was removed")
	if r.code != 0 || r.stderr != "" || r.stdout != "web.1 | bye\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// -f exits 0 when the daemon stops.
func TestLogsFollowDaemonStops(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := filepath.Join(testhelper.ShortDir(t), "c.sock")
	ln, err := ctl.Listen(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(sctx, ln, ctl.NewHandler(f, nil)) }()

	out, done := logsF(t, context.Background(), f, sock, "-n", "0", "web")
	f.Log("web", "stdout", "last")
	testhelper.Eventually(t, 30*time.Second, "the line", func() bool { return out.String() == "web.1 | last\n" })
	stop()
	r := waitExit(t, done, "the daemon stopped")
	if r.code != 0 || r.stderr != "" || r.stdout != "web.1 | last\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
