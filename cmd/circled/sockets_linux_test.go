//go:build linux

package main

// Issue 16 §1 against the real circled and circlectl: circled holds the
// listening socket, so a restart or a crash of the process behind it
// loses no request (they queue in the kernel's backlog meanwhile).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// sockServer is a server that accepts on an inherited descriptor (argv[1],
// else LISTEN_FDS from 3) and answers each line with "ok PID". On SIGTERM
// it finishes the connection it is serving, if any, then exits.
const sockServer = `import os, socket, sys
fd = int(sys.argv[1]) if len(sys.argv) > 1 else 3
assert os.environ.get("LISTEN_FDS") == "1", os.environ.get("LISTEN_FDS")
assert os.environ.get("LISTEN_PID") == str(os.getpid())
import select, signal
# SIGTERM stays blocked: it is seen between connections, never in one.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
s = socket.socket(fileno=fd)
s.setblocking(False)
while signal.SIGTERM not in signal.sigpending():
    if not select.select([s], [], [], 0.05)[0]:
        continue
    try:
        c, _ = s.accept()
    except BlockingIOError:
        continue
    c.setblocking(True)
    f = c.makefile("rwb")
    f.readline()
    f.write(b"ok %d\n" % os.getpid())
    f.flush()
    c.close()
`

func needPython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the socket server is a Python script")
	}
	return py
}

// request sends one line to addr and returns the answer's pid.
func request(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write([]byte("x\n")); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	var pid int
	if _, err := fmt.Sscanf(line, "ok %d", &pid); err != nil {
		return 0, fmt.Errorf("answer %q", line)
	}
	return pid, nil
}

// Sequential requests to a circled socket across `circlectl restart` and
// across kill -9 of the server: none fails.
func TestSocketsNoRequestLost(t *testing.T) {
	py := needPython(t)
	dir := t.TempDir()
	srv := filepath.Join(dir, "server.py")
	if err := os.WriteFile(srv, []byte(sockServer), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	p := startCircled(t, dir, fmt.Sprintf(`[watcher:web]
cmd = %s %s $(circle.sockets.web)
use_sockets = true
graceful_timeout = 5

[socket:web]
host = 127.0.0.1
port = %d
`, py, srv, port))
	p.up()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	testhelper.Eventually(t, waitTimeout, "web to run", func() bool { return len(p.pidsOf("web")) == 1 })

	var ok, failed atomic.Int64
	var mu sync.Mutex
	var errs []string
	seen := map[int]bool{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			pid, err := request(addr)
			if err != nil {
				failed.Add(1)
				errs = append(errs, fmt.Sprintf("after %d served: %v", ok.Load(), err))
			} else {
				ok.Add(1)
				seen[pid] = true
			}
			mu.Unlock()
		}
	}()
	served := func(n int64) {
		start := ok.Load()
		testhelper.Eventually(t, waitTimeout, "requests served", func() bool { return ok.Load() >= start+n })
	}
	served(20)
	first := p.pidsOf("web")
	p.mustCtl("restart", "web")
	served(20)
	second := p.pidsOf("web")
	if len(second) != 1 || second[0] == first[0] {
		t.Fatalf("restart: pids %v then %v", first, second)
	}
	// A connection the killed process had accepted dies with it, so the
	// kill lands between two requests; the requests that follow queue in
	// the backlog until the new process accepts them.
	mu.Lock()
	syscall.Kill(second[0], syscall.SIGKILL)
	mu.Unlock()
	testhelper.Eventually(t, waitTimeout, "web respawned", func() bool {
		ps := p.pidsOf("web")
		return len(ps) == 1 && ps[0] != second[0]
	})
	served(20)
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d requests served by %d processes, %d failed", ok.Load(), len(seen), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed: %s", failed.Load(), strings.Join(errs[:min(len(errs), 5)], "; "))
	}
	if len(seen) < 3 {
		t.Fatalf("requests saw %d server processes, want 3 (before restart, after it, after the crash)", len(seen))
	}
	p.quit()
	if _, err := request(addr); err == nil {
		t.Fatalf("the socket still answers after circled quit")
	}
}

// circus's examples that use sockets run under circled with the programs
// they name, where this machine has them (Debian packages uwsgi; it has no
// chaussette).
func TestSocketsCircusExamples(t *testing.T) {
	src := filepath.Join("..", "..", "..", "shared", "peer-configs", "circus", "examples")
	if _, err := os.Stat(src); err != nil {
		t.Skipf("circus's examples not found: %v", err)
	}
	t.Run("simplesocket.ini", func(t *testing.T) { testSimpleSocketExample(t, src) })
	// chaussette is a pip-only WSGI server (and these examples also need
	// circus's flask_*.py and chaussette.util apps, which are not in the
	// examples kept here).
	for _, file := range []string{"example5.ini", "example7.ini", "redirect_serve.ini"} {
		t.Run(file, func(t *testing.T) {
			where := "it is not installed here"
			if p, err := exec.LookPath("chaussette"); err == nil {
				where = "it is installed here (" + p + "), but this test has no runner for it"
			}
			t.Skipf("%s runs chaussette: chaussette has no Debian package and pip has no network here (%s); not run", file, where)
		})
	}
	t.Run("uwsgi_lossless_reload.ini", func(t *testing.T) { testUWSGIExample(t, src) })
}

// simplesocket.ini: three workers `python simplesocket_server.py FD` on
// [socket:simplesock]; every request is answered by one of them.
func testSimpleSocketExample(t *testing.T, src string) {
	if _, err := exec.LookPath("python"); err != nil {
		t.Skip("`python` (the example's command) not found on PATH")
	}
	b, err := os.ReadFile(filepath.Join(src, "simplesocket.ini"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A free port instead of circus's 8888 (which may be in use
	// here); simplesocket_server.py is circus's example server
	// (not in the examples directory), written as it behaves:
	// accept on the descriptor given, answer each connection.
	port := freePort(t)
	cfg := mustReplace(t, string(b), "port = 8888", "port = "+strconv.Itoa(port))
	cfg = mustReplace(t, cfg, "simplesocket_server.py", filepath.Join(dir, "simplesocket_server.py"))
	if err := os.WriteFile(filepath.Join(dir, "simplesocket_server.py"), []byte(sockServer), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startCircled(t, dir, cfg)
	p.up()
	testhelper.Eventually(t, waitTimeout, "3 workers running", func() bool { return len(p.pidsOf("worker")) == 3 })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	pids := map[int]bool{}
	for range 30 {
		pid, err := request(addr)
		if err != nil {
			t.Fatalf("request: %v\n%s", err, p.out)
		}
		pids[pid] = true
	}
	t.Logf("30 requests answered by %d of the 3 workers", len(pids))
	p.quit()
}

// mustReplace replaces every old in s, which must be there: an example
// that changed fails here rather than running unrewritten.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("the example no longer contains %q:\n%s", old, s)
	}
	return strings.ReplaceAll(s, old, new)
}

// uwsgiApp is the WSGI app of uwsgi.ini: it answers "ok PID" (the worker's
// pid). Its import waits for the file GO, so the test decides when a new
// uWSGI can start serving (uWSGI loads the app in the master before it
// forks the worker that accepts).
const uwsgiApp = `import os, time
deadline = time.monotonic() + 60
while not os.path.exists(%q):
    if time.monotonic() > deadline:
        raise SystemExit("no go file after 60 s")
    time.sleep(0.01)

def application(environ, start_response):
    body = ("ok %%d\n" %% os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// uwsgi.ini, which the example's command reads from its working
// directory: Debian's python3 plugin, HTTP on the inherited socket
// (`--socket fd://N` speaks the uwsgi protocol otherwise), a master and one
// worker, and no start without the app.
const uwsgiIni = `[uwsgi]
plugins = python3
protocol = http
wsgi-file = app.py
master = true
processes = 1
need-app = true
`

// uwsgi_lossless_reload.ini with Debian's uwsgi: circled loads its circus
// Python hooks with a warning and runs the watcher anyway; requests are
// answered by uWSGI through circled's [socket:web]; and `circlectl restart
// web` loses none of 50 sequential requests: one of them is sent while the
// old uWSGI has exited and the new one cannot serve yet, so it waits in
// circled's socket.
//
// No request is sent while the old uWSGI stops: the example's stop_signal
// is QUIT, uWSGI's "kill the stack now", and a request its worker held at
// that instant would die with it. circus's example avoids that with its
// before_signal hook (Python: SIGTSTP to pause uWSGI, then poll its stats
// until the workers are paused), which circled does not run.
func testUWSGIExample(t *testing.T, src string) {
	installDeps(t, "test-deps-uwsgi.sh", "uwsgi and its python3 plugin")
	uwsgi, err := exec.LookPath("uwsgi")
	if err != nil {
		t.Fatalf("uwsgi not on PATH after packaging/test-deps-uwsgi.sh: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(src, "uwsgi_lossless_reload.ini"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	goFile := filepath.Join(dir, "go")
	for name, text := range map[string]string{
		"uwsgi.ini": uwsgiIni,
		"app.py":    fmt.Sprintf(uwsgiApp, goFile),
		"go":        "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// As written, the command repeats --stats: uWSGI takes the second
	// "--stats" as the first one's address and the real address as a
	// config file to load, and exits. Shown here with uWSGI itself, then
	// the repeat is dropped.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	asWritten := exec.CommandContext(ctx, uwsgi, "--ini", "uwsgi.ini", "--socket", "fd://3", "--stats", "--stats", "127.0.0.1:8091")
	asWritten.Dir = dir
	out, err := asWritten.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unable to load configuration from 127.0.0.1:8091") {
		t.Fatalf("the example's command as written (--stats --stats ADDR): want uWSGI to fail loading ADDR as a config, got %v:\n%s", err, out)
	}
	t.Logf("as written (--stats --stats 127.0.0.1:809$(circus.wid)) uWSGI exits: %q; the test drops the repeated --stats", "unable to load configuration from 127.0.0.1:8091")

	port := freePort(t)
	cfg := mustReplace(t, string(b), "port = 8888", "port = "+strconv.Itoa(port))
	cfg = mustReplace(t, cfg, "--stats --stats ", "--stats ")
	// The command reads uwsgi.ini from its working directory.
	cfg = mustReplace(t, cfg, "[watcher:web]\n", "[watcher:web]\nworking_dir = "+dir+"\n")
	// The stats server of process 1 is on 127.0.0.1:8091
	// (809$(circus.wid)), unless that port is taken here.
	stats := "127.0.0.1:8091"
	if ln, err := net.Listen("tcp", stats); err != nil {
		stats = "127.0.0.1:" + strconv.Itoa(freePort(t))
		cfg = mustReplace(t, cfg, "127.0.0.1:809$(circus.wid)", stats)
		t.Logf("127.0.0.1:8091 is in use here (%v): the stats server goes to %s", err, stats)
	} else {
		ln.Close()
	}

	p := startCircled(t, dir, cfg)
	p.up()
	for _, w := range []string{
		`hooks.after_spawn: \"examples.uwsgi_lossless_reload.children_started\" is a circus (Python) hook`,
		`hooks.before_signal: \"examples.uwsgi_lossless_reload.clean_stop\" is a circus (Python) hook`,
		`hooks.extended_stats: hook not implemented by circled`,
	} {
		if !strings.Contains(p.out.String(), w) {
			t.Errorf("circled did not warn %s; output:\n%s", w, p.out)
		}
	}
	testhelper.Eventually(t, waitTimeout, "web to run", func() bool { return len(p.pidsOf("web")) == 1 })
	master := p.pidsOf("web")[0]

	addr := "127.0.0.1:" + strconv.Itoa(port)
	var failed []string
	served := map[int]int{} // worker pid -> requests answered
	get := func(i int) int {
		t.Helper()
		pid, err := httpPID(addr)
		if err != nil {
			failed = append(failed, fmt.Sprintf("request %d: %v", i, err))
			return 0
		}
		served[pid]++
		return pid
	}
	var worker int
	for i := 1; i <= 20; i++ {
		worker = get(i)
	}
	if len(failed) > 0 || len(served) != 1 {
		t.Fatalf("before the restart: failed %v, answered by workers %v\n%s", failed, served, p.out)
	}
	// $(circus.wid) expanded: process 1's stats server lists its worker.
	if err := checkUWSGIStats(stats, worker); err != nil {
		t.Errorf("uWSGI stats on %s: %v", stats, err)
	}

	// The restart, with the new uWSGI held until the request is queued.
	if err := os.Remove(goFile); err != nil {
		t.Fatal(err)
	}
	restarted := make(chan error, 1)
	go func() {
		_, err := p.ctl("restart", "web")
		restarted <- err
	}()
	testhelper.Eventually(t, waitTimeout, "the old uWSGI master and worker to exit", func() bool {
		return !pidAlive(master) && !pidAlive(worker)
	})
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("connect while no uWSGI serves: %v (circled closed its socket?)\n%s", err, p.out)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.0\r\nHost: test\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := readPID(c)
	c.Close()
	if err != nil {
		failed = append(failed, fmt.Sprintf("request 21 (queued across the restart): %v", err))
	} else {
		served[held]++
	}
	for i := 22; i <= 50; i++ {
		get(i)
	}
	select {
	case err := <-restarted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("circlectl restart web has not returned after %v\n%s", waitTimeout, p.out)
	}
	if len(failed) > 0 {
		t.Fatalf("%d of 50 requests failed: %s\n%s", len(failed), strings.Join(failed, "; "), p.out)
	}
	if held == worker || len(served) != 2 {
		t.Fatalf("want the queued request and those after it answered by one new worker (old %d): answered by %v", worker, served)
	}
	if now := p.pidsOf("web"); len(now) != 1 || now[0] == master {
		t.Fatalf("after the restart: web's pids %v (old master %d)", now, master)
	}
	t.Logf("50 requests, 0 failed: 20 by worker %d, then 30 by worker %d (the first queued in circled's socket while no uWSGI ran)", worker, held)
	p.quit()
}

// httpPID sends one GET to addr on a new connection and returns the pid
// in the "ok PID" answer.
func httpPID(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.0\r\nHost: test\r\n\r\n")); err != nil {
		return 0, err
	}
	return readPID(c)
}

// readPID reads an HTTP answer from c and returns its "ok PID".
func readPID(c net.Conn) (int, error) {
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("HTTP %d: %q", resp.StatusCode, body)
	}
	var pid int
	if _, err := fmt.Sscanf(string(body), "ok %d", &pid); err != nil {
		return 0, fmt.Errorf("answer %q", body)
	}
	return pid, nil
}

// checkUWSGIStats reads uWSGI's stats server at addr (a JSON document
// sent on connect) and checks it lists worker.
func checkUWSGIStats(addr string, worker int) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	var st struct {
		Workers []struct {
			PID int `json:"pid"`
		} `json:"workers"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("%v: %.300s", err, b)
	}
	for _, w := range st.Workers {
		if w.PID == worker {
			return nil
		}
	}
	return fmt.Errorf("worker %d not among %+v", worker, st.Workers)
}
