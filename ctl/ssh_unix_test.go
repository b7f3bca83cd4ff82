//go:build unix

package ctl_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// fakeSSH is an "ssh" that runs this test binary's dial-stdio helper on
// sock (see TestMain) and appends its pid to the returned file.
func fakeSSH(t *testing.T, sock string) (pids string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pids = filepath.Join(dir, "pids")
	script := filepath.Join(dir, "ssh")
	body := "#!/bin/sh\necho $$ >> " + pids + "\nexec env " + helperEnv + "=dial-stdio " + helperSocketEnv + "=" + sock +
		" GORACE=atexit_sleep_ms=10 " + exe + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ctl.SSHCommandEnv, script)
	return pids
}

func readPids(t *testing.T, file string) []int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// The calls of one client share one ssh process (keep-alive); Close ends
// it.
func TestSSHClientKeepAlive(t *testing.T) {
	f := ctltest.NewFake("web", "worker")
	sock := startServer(t, f)
	pidFile := fakeSSH(t, sock)
	c := ctl.NewSSHClient(&ctl.SSHHost{Host: "h1"})
	ctx := context.Background()
	if _, err := c.Status(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if names, err := c.List(ctx); err != nil || len(names) != 2 {
		t.Fatalf("List = %v, %v", names, err)
	}
	if _, err := c.Start(ctx, []string{"web"}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stop(ctx, []string{"nope"}, true); !errors.Is(err, ctl.ErrNoSuchWatcher) {
		t.Fatalf("Stop nope: %v", err)
	}
	pids := readPids(t, pidFile)
	if len(pids) != 1 {
		t.Fatalf("ssh ran %d times, want once", len(pids))
	}
	c.Close()
	// Close waited for it: it is gone, not even a zombie.
	if err := syscall.Kill(pids[0], 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("ssh (pid %d) still there after Close: %v", pids[0], err)
	}
}

// A follow over ssh ends cleanly when ctx does (the daemon stops
// following) or ssh is interrupted; when ssh dies otherwise mid-stream,
// Logs fails with ErrUnreachable.
func TestSSHClientLogsFollow(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := startServer(t, f)
	pidFile := fakeSSH(t, sock)
	c := ctl.NewSSHClient(&ctl.SSHHost{Host: "h1"})
	defer c.Close()

	// follow starts a follow through a new ssh and returns that ssh's
	// pid once the daemon follows and the first line came through.
	// The daemon notices that the previous follow's ssh went away on its
	// own time, possibly after our Logs returned: until it does, its stale
	// follower would pass for the new one (and its dead ssh's pid be the
	// last in the file), so wait for it to go first.
	follow := func(ctx context.Context) (int, <-chan error) {
		testhelper.Eventually(t, 10*time.Second, "the previous follower to go", func() bool { return f.Followers() == 0 })
		before := len(readPids(t, pidFile))
		w := &testhelper.SyncBuffer{}
		done := make(chan error, 1)
		go func() { done <- c.Logs(ctx, "web", ctl.LogsRequest{Follow: true}, w) }()
		testhelper.Eventually(t, 10*time.Second, "the daemon to follow", func() bool { return f.Followers() == 1 })
		f.Log("web", "stdout", "now")
		testhelper.Eventually(t, 10*time.Second, "the line", func() bool { return strings.HasSuffix(w.String(), "web.1 | now\n") })
		pids := readPids(t, pidFile)
		if len(pids) != before+1 {
			t.Fatalf("the follow ran %d new ssh, want 1", len(pids)-before)
		}
		return pids[len(pids)-1], done
	}

	ctx, cancel := context.WithCancel(context.Background())
	_, done := follow(ctx)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Logs after cancel: %v", err)
	}

	// Ctrl-C in a terminal reaches ssh too: the stream just ends.
	pid, done := follow(context.Background())
	syscall.Kill(pid, syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Logs after ssh got SIGINT: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Logs did not return after ssh got SIGINT")
	}

	pid, done = follow(context.Background())
	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case err := <-done:
		if !errors.Is(err, ctl.ErrUnreachable) || !strings.Contains(err.Error(), "ssh failed (signal: killed)") {
			t.Errorf("Logs after ssh died: %v, want ErrUnreachable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Logs did not return after ssh died")
	}
}

// dial-stdio's side: when its stdin ends, the daemon finishes the reply
// and closes; Proxy returns nil.
func TestProxyHalfClose(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := startServer(t, f)
	conn, err := ctl.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	in := strings.NewReader("GET /v1/list HTTP/1.1\r\nHost: circled\r\n\r\n")
	out := &testhelper.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- ctl.Proxy(context.Background(), conn, in, out) }()
	select {
	case err := <-done:
		if err != nil || !strings.HasPrefix(out.String(), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(out.String(), `{"watchers":["web"]}`+"\n") {
			t.Errorf("Proxy = %v, out %q", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Proxy did not return after its input ended")
	}

	// Dial's errors name the socket and wrap ErrUnreachable.
	missing := filepath.Join(testhelper.ShortDir(t), "none.sock")
	if _, err := ctl.Dial(context.Background(), missing); !errors.Is(err, ctl.ErrUnreachable) ||
		err.Error() != "daemon not reachable on "+missing+": no such file or directory" {
		t.Errorf("Dial(missing) = %v", err)
	}
}
