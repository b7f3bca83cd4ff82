//go:build linux

package main

// Issue 16 §1 against the real circled and circlectl: circled holds the
// listening socket, so a restart or a crash of the process behind it
// loses no request (they queue in the kernel's backlog meanwhile).

import (
	"bufio"
	"fmt"
	"net"
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

// circus's examples that use sockets start under circled with the
// programs they name, where this machine has them.
func TestSocketsCircusExamples(t *testing.T) {
	src := filepath.Join("..", "..", "..", "shared", "peer-configs", "circus", "examples")
	if _, err := os.Stat(src); err != nil {
		t.Skipf("circus's examples not found: %v", err)
	}
	for _, tc := range []struct{ file, program string }{
		{"simplesocket.ini", "python"},
		{"example5.ini", "chaussette"},
		{"example7.ini", "chaussette"},
		{"redirect_serve.ini", "chaussette"},
		{"uwsgi_lossless_reload.ini", "uwsgi"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			if tc.file != "simplesocket.ini" {
				if _, err := exec.LookPath(tc.program); err != nil {
					t.Skipf("%s not installed (Debian has no package of it, or it is not installed here)", tc.program)
				}
			}
			if _, err := exec.LookPath(tc.program); err != nil {
				t.Skipf("%s not found", tc.program)
			}
			b, err := os.ReadFile(filepath.Join(src, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			// A free port instead of circus's 8888 (which may be in use
			// here); simplesocket_server.py is circus's example server
			// (not in the examples directory), written as it behaves:
			// accept on the descriptor given, answer each connection.
			port := freePort(t)
			cfg := strings.ReplaceAll(string(b), "port = 8888", "port = "+strconv.Itoa(port))
			cfg = strings.ReplaceAll(cfg, "simplesocket_server.py", filepath.Join(dir, "simplesocket_server.py"))
			os.WriteFile(filepath.Join(dir, "simplesocket_server.py"), []byte(sockServer), 0o644)
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
		})
	}
}
