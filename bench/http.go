//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// webServer is the HTTP server of scenario 9, run as
// `python3 web.py PORT`. It binds 127.0.0.1:PORT with SO_REUSEADDR and
// SO_REUSEPORT (so a replacement can bind beside its predecessor, as a
// replace-style reload needs), answers every GET with its pid, and:
//   - SIGTERM: stops accepting (closes the listener) between requests and
//     exits 0;
//   - SIGHUP: re-execs itself between requests, keeping the listening
//     socket (its descriptor number in WEB_LISTEN_FD): connections that
//     arrive meanwhile wait in the backlog, as with nginx or gunicorn.
//
// It prints "serving" once it listens.
const webServer = `import os, signal, socket, sys
from http.server import HTTPServer, BaseHTTPRequestHandler

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%d\n" % os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

class S(HTTPServer):
    request_queue_size = 128
    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        HTTPServer.server_bind(self)
    def service_actions(self):
        if flags.get("term"):
            self.socket.close()
            sys.exit(0)
        if flags.get("hup"):
            fd = self.socket.fileno()
            os.set_inheritable(fd, True)
            os.environ["WEB_LISTEN_FD"] = str(fd)
            os.execv(sys.executable, [sys.executable] + sys.argv)

flags = {}
signal.signal(signal.SIGTERM, lambda *a: flags.__setitem__("term", 1))
signal.signal(signal.SIGHUP, lambda *a: flags.__setitem__("hup", 1))
port = int(sys.argv[1])
fd = os.environ.pop("WEB_LISTEN_FD", None)
if fd is None:
    srv = S(("127.0.0.1", port), H)
else:
    srv = S(("127.0.0.1", port), H, bind_and_activate=False)
    srv.socket.close()
    srv.socket = socket.socket(fileno=int(fd))
print("serving", flush=True)
srv.serve_forever(poll_interval=0.02)
`

// httpResult is one run of the request loop across one action.
type httpResult struct {
	failed    int
	sent      int
	outage    time.Duration // longest run of consecutive failures, first to last
	loop      time.Duration
	cmdTime   time.Duration
	cmdErr    string // the command's error and output when it failed
	firstErrs string // the first failure's error
	servedBy  int    // distinct pids that answered
}

// httpCase is one way of replacing the server under load.
type httpCase struct {
	name    string
	kind    string
	extra   string // extra watcher keys (circled)
	shows   string // what `circled check` prints when it knows the keys
	command func(d *daemon) *exec.Cmd
	na      string // why it was not run
	broken  bool   // a run failed to set up: no more runs (see the notes)
	results []httpResult
}

const (
	httpRequests  = 2000
	httpActionAt  = 200 // the action starts before this request
	httpPace      = time.Millisecond
	httpReqTO     = 5 * time.Second
	httpLoopLimit = 30 * time.Second
)

// runHTTP is scenario 9 (issues 15 and 16): a Python HTTP server under
// the daemon, 2000 sequential GETs (a new connection each, at most one per
// ms) and, from request 200, one action: restart, reload with ready.http,
// reload with reload_signal = HUP, supervisorctl restart.
func runHTTP(r *report, root string, reps int) {
	dir, err := os.MkdirTemp(root, "http")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "web.py")
	if err := os.WriteFile(script, []byte(webServer), 0o644); err != nil {
		fatal(err)
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		r.note("HTTP scenario skipped: no python3")
		return
	}
	// The interpreter itself, not a wrapper such as pyenv's shim (a
	// shell script that costs about a second per start): the outages
	// measured are circled's, not the shim's.
	if out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output(); err == nil {
		if exe := strings.TrimSpace(string(out)); filepath.IsAbs(exe) {
			py = exe
		}
	}
	ctl := func(args ...string) func(d *daemon) *exec.Cmd {
		return func(d *daemon) *exec.Cmd {
			return exec.Command(circlectlBin, append([]string{"--socket", d.sock}, args...)...)
		}
	}
	cases := []*httpCase{
		{name: "`circlectl restart web`", kind: kindCircled, command: ctl("restart", "web")},
		{name: "`circlectl reload web` with `ready.http`", kind: kindCircled,
			extra: "ready.http = http://127.0.0.1:$PORT/\nready.interval = 0.05\nready.timeout = 10\n", shows: "http http://", command: ctl("reload", "web")},
		// ready.log is exact where ready.http is not: only the new
		// process prints "serving", once it listens.
		{name: "`circlectl reload web` with `ready.log = ^serving$`", kind: kindCircled,
			extra: "ready.log = ^serving$\nready.timeout = 10\n", shows: "log \"", command: ctl("reload", "web")},
		{name: "`circlectl reload web` with `reload_signal = HUP`", kind: kindCircled,
			extra: "reload_signal = HUP\n", shows: "SIGHUP", command: ctl("reload", "web")},
	}
	if haveSup {
		cases = append(cases, &httpCase{name: "`supervisorctl restart web:*`", kind: kindSupervisord,
			command: func(d *daemon) *exec.Cmd { return exec.Command(supervisorctl, "-c", d.conf, "restart", "web:*") }})
	}
	// Keys this circled does not know: `circled check` rejects them, or
	// does not print them back.
	for _, c := range cases {
		if c.kind != kindCircled || c.extra == "" {
			continue
		}
		key := strings.SplitN(c.extra, " ", 2)[0]
		feature := "reload_signal"
		if strings.HasPrefix(key, "ready.") {
			feature = "ready.*"
		}
		conf := filepath.Join(dir, "check.ini")
		os.WriteFile(conf, []byte(circledConf(dir, webProg(py, script, 1, c.extra))), 0o644)
		out, err := exec.Command(circledBin, "check", "-c", conf).CombinedOutput()
		switch {
		case err != nil:
			c.na = fmt.Sprintf("n/a (%s not supported by this circled: `circled check` says %q)", feature,
				firstLine([]byte(strings.ReplaceAll(string(out), dir+"/", ""))))
		case !strings.Contains(string(out), c.shows):
			c.na = fmt.Sprintf("n/a (%s not supported by this circled: `circled check` does not show `%s`)", feature, key)
		}
		if c.na != "" {
			logf("http %s: %s", c.name, c.na)
		}
	}
	for rep := 0; rep < reps; rep++ {
		for _, c := range cases {
			if c.na != "" || c.broken {
				continue
			}
			logf("http %s rep %d/%d", c.name, rep+1, reps)
			res, err := httpOnce(c, dir, py, script)
			if err != nil {
				// Bounded time: a setup that fails once is not tried again.
				r.note("HTTP %s: %v", c.name, err)
				c.broken = true
				continue
			}
			c.results = append(c.results, res)
		}
	}
	r.http = cases
}

func webProg(py, script string, port int, extra string) program {
	return program{name: "web", command: fmt.Sprintf("%s %s %d", py, script, port), n: 1, respawn: true,
		extra: strings.ReplaceAll(extra, "$PORT", strconv.Itoa(port))}
}

// freePort is a port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func httpOnce(c *httpCase, dir, py, script string) (httpResult, error) {
	var res httpResult
	port, err := freePort()
	if err != nil {
		return res, err
	}
	d, err := start(c.kind, dir, webProg(py, script, port, c.extra))
	if err != nil {
		return res, err
	}
	defer func() {
		d.stop()
		os.RemoveAll(d.dir)
	}()
	get := pidGetter(port, httpReqTO)
	// Up and serving, then settled past min_uptime / startsecs.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := get(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(d.dir, "daemon.stderr"))
			return res, fmt.Errorf("server not answering after 20 s: %.300s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)

	cmdDone := make(chan struct{})
	var cmd *exec.Cmd
	pids := map[int]bool{}
	var failStart time.Time
	t0 := time.Now()
	for i := 0; i < httpRequests; i++ {
		if i == httpActionAt {
			cmd = c.command(d)
			go func() {
				defer close(cmdDone)
				ts := time.Now()
				out, err := cmd.CombinedOutput()
				res.cmdTime = time.Since(ts)
				if err != nil {
					res.cmdErr = fmt.Sprintf("%v: %s", err, strings.Join(strings.Fields(string(out)), " "))
				}
			}()
		}
		if next := t0.Add(time.Duration(i) * httpPace); time.Until(next) > 0 {
			time.Sleep(time.Until(next))
		}
		ts := time.Now()
		pid, err := get()
		res.sent++
		if err != nil {
			res.failed++
			if res.firstErrs == "" {
				res.firstErrs = err.Error()
			}
			if failStart.IsZero() {
				failStart = ts
			}
			if o := time.Since(failStart); o > res.outage {
				res.outage = o
			}
		} else {
			failStart = time.Time{}
			pids[pid] = true
		}
		if time.Since(t0) > httpLoopLimit {
			break
		}
	}
	res.loop = time.Since(t0)
	if cmd == nil {
		res.cmdErr = "the loop ended before the action"
	} else {
		select {
		case <-cmdDone:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-cmdDone
			res.cmdErr = "killed: the command had not returned 20 s after the loop"
		}
	}
	res.servedBy = len(pids)
	return res, nil
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}

// pidGetter returns a function that GETs http://127.0.0.1:PORT/ on a new
// connection each time (timeout each) and returns the pid the test
// server answers with.
func pidGetter(port int, timeout time.Duration) func() (int, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	return func() (int, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("answer %q", b)
		}
		return pid, nil
	}
}
