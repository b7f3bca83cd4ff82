package rpc2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// supervisorctl finds Debian's supervisorctl, installing it with
// packaging/test-deps-supervisor.sh when it is missing and this machine
// can (root and apt-get); otherwise the test skips and says why.
func supervisorctl(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("SKIP: supervisorctl is tested on Linux (Debian's package)")
	}
	if p, err := exec.LookPath("supervisorctl"); err == nil {
		return p
	}
	script, err := filepath.Abs("../packaging/test-deps-supervisor.sh")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", script).CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			t.Skipf("SKIP: supervisorctl missing and not installable: %s", strings.TrimSpace(string(out)))
		}
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	t.Logf("%s", out)
	p, err := exec.LookPath("supervisorctl")
	if err != nil {
		t.Fatalf("supervisorctl still missing after %s", script)
	}
	return p
}

type ctlEnv struct {
	t    *testing.T
	bin  string
	args []string // -c CONF and -s URL (and -u/-p)
	f    *fake
}

func (e *ctlEnv) run(args ...string) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, append(append([]string{}, e.args...), args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			e.t.Fatalf("supervisorctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// expect runs supervisorctl and checks its exit code and that every want
// line appears in its output.
func (e *ctlEnv) expect(code int, args []string, want ...string) string {
	e.t.Helper()
	out, c := e.run(args...)
	if c != code {
		e.t.Errorf("supervisorctl %s: exit %d, want %d\n%s", strings.Join(args, " "), c, code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			e.t.Errorf("supervisorctl %s: no %q in\n%s", strings.Join(args, " "), w, out)
		}
	}
	if strings.Contains(out, "Traceback") || strings.Contains(out, "error: <class") {
		e.t.Errorf("supervisorctl %s crashed:\n%s", strings.Join(args, " "), out)
	}
	return out
}

func serveOn(t *testing.T, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func TestSupervisorctl(t *testing.T) {
	bin := supervisorctl(t)
	f := newFake()
	f.appendLog(LogRef{Group: "web", WID: 1, Stream: "stdout"}, "web says hello\n")
	f.appendLog(LogRef{}, "circled: started\n")
	dir := t.TempDir()
	sock := filepath.Join(dir, "circled.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, l, NewHandler(f, Options{}))
	conf := filepath.Join(dir, "supervisord.conf")
	if err := os.WriteFile(conf, []byte("[supervisorctl]\nserverurl = unix://"+sock+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &ctlEnv{t: t, bin: bin, args: []string{"-c", conf}, f: f}

	// status: exit 3 (LSB "not running") because cron is stopped.
	e.expect(3, []string{"status"},
		"cron                             STOPPED   Not started",
		"web                              RUNNING   pid 1001, uptime ",
		"worker:worker_1                  RUNNING   pid 1002",
		"worker:worker_3                  RUNNING   pid 1004")
	e.expect(0, []string{"status", "web"}, "web ")
	e.expect(4, []string{"status", "nope"}, "nope: ERROR (no such process)")
	e.expect(4, []string{"status", "nope:*"}, "nope: ERROR (no such group)")
	e.expect(0, []string{"version"}, "1.2.3")
	e.expect(0, []string{"pid"}, "4242")
	e.expect(0, []string{"pid", "web"}, "1001")
	e.expect(1, []string{"pid", "nope"}, "No such process nope")
	e.expect(0, []string{"avail"}, "cron                             in use    manual    30:30", "worker:worker_2                  in use    auto      20:20")

	e.expect(0, []string{"start", "cron"}, "cron: started")
	e.expect(0, []string{"start", "cron"}, "cron: ERROR (already started)")
	e.expect(0, []string{"stop", "web"}, "web: stopped")
	e.expect(0, []string{"stop", "web"}, "web: ERROR (not running)")
	e.expect(0, []string{"stop", "worker:*"}, "worker:worker_1: stopped", "worker:worker_3: stopped")
	e.expect(0, []string{"start", "worker:*"}, "worker:worker_1: started", "worker:worker_2: started")
	e.expect(0, []string{"restart", "web"}, "web: ERROR (not running)", "web: started")
	e.expect(0, []string{"restart", "worker:*"}, "worker:worker_2: stopped", "worker:worker_2: started")
	e.expect(0, []string{"restart", "all"}, "cron: stopped", "web: started", "worker:worker_3: started")
	e.expect(1, []string{"start", "nope"}, "nope: ERROR (no such process)")

	e.expect(0, []string{"signal", "HUP", "web"}, "web: signalled")
	e.expect(0, []string{"signal", "USR1", "worker:*"}, "worker:worker_1: signalled", "worker:worker_3: signalled")
	e.expect(1, []string{"signal", "BOGUS", "web"}, "web: ERROR (bad signal name)")

	e.expect(0, []string{"tail", "web"}, "web says hello")
	e.expect(0, []string{"tail", "-5", "web"}, "ello")
	e.expect(1, []string{"tail", "web", "stderr"}, "web: ERROR (no log file)")
	e.expect(0, []string{"maintail"}, "circled: started")
	e.expect(0, []string{"clear", "web"}, "web: cleared")

	f.mu.Lock()
	f.reload = Changes{Added: []string{"cron"}, Changed: []string{"worker"}, Removed: []string{"old"}}
	f.mu.Unlock()
	e.expect(0, []string{"reread"}, "cron: available", "worker: changed", "old: disappeared")
	e.expect(0, []string{"update"}, "old: stopped", "old: removed process group", "worker: updated process group", "cron: added process group")
	e.expect(0, []string{"add", "cron"}, "ERROR: process group already active")
	e.expect(1, []string{"remove", "web"}, "ERROR: process/group still running: web")

	// tail -f: the backlog, then a line written after it started.
	t.Run("tail -f", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-c", conf, "tail", "-f", "web")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cmd.Process.Kill()
		f.appendLog(LogRef{Group: "web", WID: 1, Stream: "stdout"}, "before\n")
		sc := bufio.NewScanner(stdout)
		appended := false
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "before") && !appended {
				appended = true
				f.appendLog(LogRef{Group: "web", WID: 1, Stream: "stdout"}, "followed line\n")
			}
			if strings.Contains(line, "followed line") {
				return
			}
		}
		t.Fatalf("tail -f ended without the followed line (err %v)", sc.Err())
	})

	e.expect(0, []string{"shutdown"}, "Shut down")
	f.mu.Lock()
	if !f.down {
		t.Error("shutdown did not reach the backend")
	}
	f.mu.Unlock()
}

func TestSupervisorctlHTTPAuth(t *testing.T) {
	bin := supervisorctl(t)
	f := newFake()
	var logBuf bytes.Buffer
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, l, BasicAuth(NewHandler(f, Options{}), "admin", "s3cret", slog.New(slog.NewTextHandler(&logBuf, nil))))
	conf := filepath.Join(t.TempDir(), "supervisord.conf")
	if err := os.WriteFile(conf, []byte("[supervisorctl]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s", l.Addr())
	e := &ctlEnv{t: t, bin: bin, args: []string{"-c", conf, "-s", url, "-u", "admin", "-p", "s3cret"}, f: f}
	e.expect(0, []string{"stop", "web"}, "web: stopped")
	e.expect(0, []string{"start", "web"}, "web: started")
	e.expect(0, []string{"pid", "web"}, "1005")
	// supervisorctl prints this, then (as against supervisord) retries
	// once and prints the ProtocolError.
	bad := &ctlEnv{t: t, bin: bin, args: []string{"-c", conf, "-s", url, "-u", "admin", "-p", "wrong"}, f: f}
	if out, code := bad.run("pid"); code == 0 || !strings.Contains(out, "Server requires authentication") || !strings.Contains(out, "401 Unauthorized") {
		t.Errorf("wrong password: exit %d\n%s", code, out)
	}
	if !strings.Contains(logBuf.String(), "wrong username or password") {
		t.Errorf("not logged: %s", logBuf.String())
	}
}
