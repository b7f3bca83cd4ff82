//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// sockWeb is the server of scenario 11 (issue 16), run as
// `python3 sockweb.py fd N` (accept on the inherited descriptor N, a
// circled [socket:web]) or `python3 sockweb.py port PORT` (bind
// 127.0.0.1:PORT itself with SO_REUSEADDR). It answers every GET with its
// pid. On SIGTERM it finishes the request it is serving, if any, and exits
// 0 (its listener, when it is its own, closes with it). The listener is
// non-blocking, so of two processes on one socket (during a reload) the
// one that loses the race to accept goes back to select.
//
// In port mode a bind that finds the port in use (the old process of a
// reload still has it) is retried every 10 ms for up to 30 s: without
// SO_REUSEPORT two processes cannot listen on one port, and a server that
// gave up at once would make every reload fail (circled keeps the old
// process then) instead of handing over.
const sockWeb = `import errno, os, signal, socket, sys, time
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
        HTTPServer.server_bind(self)
    def get_request(self):
        c, a = self.socket.accept()
        c.setblocking(True)
        return c, a
    def service_actions(self):
        if term:
            sys.exit(0)

term = []
signal.signal(signal.SIGTERM, lambda *a: term.append(1))
mode, arg = sys.argv[1], int(sys.argv[2])
srv = S(("127.0.0.1", arg if mode == "port" else 0), H, bind_and_activate=False)
if mode == "fd":
    srv.socket.close()
    srv.socket = socket.socket(fileno=arg)
else:
    deadline = time.monotonic() + 30
    while True:
        try:
            srv.server_bind()
            break
        except OSError as e:
            if e.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    srv.server_activate()
srv.socket.setblocking(False)
print("serving", flush=True)
srv.serve_forever(poll_interval=0.02)
`

const (
	sockRequests = 2000
	sockPace     = 5 * time.Millisecond // at most one request per 5 ms: 400 requests span ≥ 2 s, longer than a reload
	sockReqTO    = 5 * time.Second
	sockLimit    = 120 * time.Second // bound of one loop
)

// sockActions are the commands run during the loop, each started once the
// loop has sent that many requests and the previous command has returned.
var sockActions = []struct {
	at   int
	verb string
}{{400, "restart"}, {800, "reload"}, {1200, "restart"}, {1600, "reload"}}

// sockPython is the interpreter the scenario ran (for the report).
var sockPython string

// sockAction is one command's outcome.
type sockAction struct {
	verb     string
	at, done int // requests sent when it started, when it returned
	took     time.Duration
	err      string
}

// sockRun is one loop of 2000 requests across the actions.
type sockRun struct {
	sent, failed int
	slowest      time.Duration // longest successful request
	outage       time.Duration // longest run of consecutive failures, first to last
	pids         int           // distinct server pids that answered
	firstErr     string
	actions      []sockAction
	late         int // actions that started after the last request
	// failedIn counts failures by the action posted last before them
	// ("" before the first): each action returns well before the next
	// is posted (see the command times).
	failedIn map[string]int
}

// sockCase is one setup: a daemon kind and where the server listens.
type sockCase struct {
	kind    string
	socket  bool // a circled [socket:web]; false: the server binds its own port
	na      string
	broken  bool
	results []sockRun
}

func (c *sockCase) label() string {
	if c.socket {
		return "circled socket"
	}
	return "own port"
}

// sockConf is circled's config for one run: one watcher web running the
// server and, in socket mode, [socket:web] on 127.0.0.1:port.
func sockConf(dir, py, script string, port int, socket bool) string {
	p := program{name: "web", n: 1, respawn: true}
	if socket {
		p.command = fmt.Sprintf("%s %s fd $(circle.sockets.web)", py, script)
		p.extra = "use_sockets = true\n"
	} else {
		p.command = fmt.Sprintf("%s %s port %d", py, script, port)
	}
	conf := circledConf(dir, p)
	if socket {
		conf += fmt.Sprintf("[socket:web]\nhost = 127.0.0.1\nport = %d\n", port)
	}
	return conf
}

// runSockets is scenario 11 (issue 16): the same Python HTTP server on a
// socket circled holds and on a port it binds itself, 2000 sequential
// requests across `circlectl restart web` and `circlectl reload web`.
func runSockets(r *report, root string, reps int) {
	py, err := exec.LookPath("python3")
	if err != nil {
		r.note("sockets scenario skipped: no python3")
		return
	}
	// The interpreter itself, not a wrapper: a pyenv shim (a bash script
	// running `pyenv exec`) took about 1 s per start on the bench machine,
	// which the own-port server pays in full as outage.
	if out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output(); err == nil {
		if exe := strings.TrimSpace(string(out)); filepath.IsAbs(exe) {
			py = exe
		}
	}
	dir, err := os.MkdirTemp(root, "sockets")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	sockPython = py
	script := filepath.Join(dir, "sockweb.py")
	if err := os.WriteFile(script, []byte(sockWeb), 0o644); err != nil {
		fatal(err)
	}
	var cases []*sockCase
	for _, k := range kinds() {
		if k == kindSupervisord {
			continue
		}
		cases = append(cases, &sockCase{kind: k, socket: true}, &sockCase{kind: k, socket: false})
	}
	// A circled without [socket:NAME] rejects the section.
	for _, c := range cases {
		if !c.socket {
			continue
		}
		bin := circledBin
		if c.kind == kindAlt {
			bin = altBin
		}
		conf := filepath.Join(dir, "check.ini")
		os.WriteFile(conf, []byte(sockConf(dir, py, script, 8080, true)), 0o644)
		if out, err := exec.Command(bin, "check", "-c", conf).CombinedOutput(); err != nil {
			c.na = fmt.Sprintf("n/a ([socket:NAME] not supported by this circled: `circled check` says %q)",
				firstLine([]byte(strings.ReplaceAll(string(out), dir+"/", ""))))
			logf("sockets %s: %s", kindLabel(c.kind), c.na)
		}
	}
	for rep := 0; rep < reps; rep++ {
		for _, c := range cases {
			if c.na != "" || c.broken {
				continue
			}
			logf("sockets %s, %s, rep %d/%d", kindLabel(c.kind), c.label(), rep+1, reps)
			res, err := sockOnce(c, dir, py, script)
			if err != nil {
				r.note("sockets %s, %s: %v", kindLabel(c.kind), c.label(), err)
				c.broken = true
				continue
			}
			logf("sockets %s, %s: %d of %d failed, slowest %v", kindLabel(c.kind), c.label(), res.failed, res.sent, res.slowest.Round(time.Millisecond))
			c.results = append(c.results, res)
		}
	}
	r.sockets = cases
}

// startConf starts a circled of kind on the config text conf, as start
// does for the generated ones.
func startConf(kind, root, conf string) (*daemon, error) {
	dir, err := os.MkdirTemp(root, kind[:1])
	if err != nil {
		return nil, err
	}
	d := &daemon{kind: kind, dir: dir, exited: make(chan struct{}),
		conf: filepath.Join(dir, "circled.ini"), sock: filepath.Join(dir, "c.sock")}
	conf = strings.ReplaceAll(conf, "$DIR", dir)
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin := circledBin
	if kind == kindAlt {
		bin = altBin
	}
	return d, d.launch(bin, "-c", d.conf)
}

func sockOnce(c *sockCase, root, py, script string) (sockRun, error) {
	res := sockRun{failedIn: map[string]int{}}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	d, err := startConf(c.kind, root, sockConf("$DIR", py, script, port, c.socket))
	if err != nil {
		return res, err
	}
	defer func() {
		d.stop()
		os.RemoveAll(d.dir)
	}()
	get := pidGetter(port, sockReqTO)
	// Up and answering, then past min_uptime (1 s): a restart or reload
	// of a process still starting is another scenario.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := get(); err == nil {
			break
		}
		select {
		case <-d.exited:
			b, _ := os.ReadFile(filepath.Join(d.dir, "daemon.stderr"))
			return res, fmt.Errorf("circled exited: %v: %.300s", d.exitErr, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(d.dir, "daemon.stderr"))
			return res, fmt.Errorf("server not answering after 20 s: %.300s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)

	// The actions run one after the other in their own goroutine; the
	// loop posts each once it has sent that many requests.
	var mu sync.Mutex
	sent := 0
	post := make(chan int, len(sockActions))
	actionsDone := make(chan struct{})
	go func() {
		defer close(actionsDone)
		for i := range post {
			a := sockAction{verb: sockActions[i].verb}
			mu.Lock()
			a.at = sent
			mu.Unlock()
			t := time.Now()
			cmd := exec.Command(circlectlBin, "--socket", d.sock, a.verb, "web")
			out, err := cmd.CombinedOutput()
			a.took = time.Since(t)
			if err != nil {
				a.err = fmt.Sprintf("%v: %s", err, strings.Join(strings.Fields(string(out)), " "))
			}
			mu.Lock()
			a.done = sent
			res.actions = append(res.actions, a)
			mu.Unlock()
		}
	}()
	pids := map[int]bool{}
	var failStart time.Time
	next := 0
	t0 := time.Now()
	for i := 0; i < sockRequests; i++ {
		if next < len(sockActions) && i == sockActions[next].at {
			post <- next
			next++
		}
		if at := t0.Add(time.Duration(i) * sockPace); time.Until(at) > 0 {
			time.Sleep(time.Until(at))
		}
		ts := time.Now()
		pid, err := get()
		el := time.Since(ts)
		mu.Lock()
		sent++
		mu.Unlock()
		if err != nil {
			res.failed++
			if next > 0 {
				res.failedIn[sockActions[next-1].verb]++
			} else {
				res.failedIn[""]++
			}
			if res.firstErr == "" {
				res.firstErr = fmt.Sprintf("request %d: %v", i+1, err)
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
			res.slowest = max(res.slowest, el)
		}
		if time.Since(t0) > sockLimit {
			break
		}
	}
	close(post)
	select {
	case <-actionsDone:
	case <-time.After(60 * time.Second):
		return res, fmt.Errorf("circlectl %s had not returned 60 s after the loop", sockActions[len(res.actions)].verb)
	}
	res.sent = sent
	res.pids = len(pids)
	for _, a := range res.actions {
		if a.at >= sent {
			res.late++
		}
	}
	return res, nil
}

// socketsSection writes scenario 11's table.
func (r *report) socketsSection(b *strings.Builder) {
	if r.sockets == nil {
		return
	}
	b.WriteString("\n## 11. Requests across restart and reload: a socket held by circled vs the server's own port (issue 16)\n\n")
	var acts []string
	for _, a := range sockActions {
		acts = append(acts, fmt.Sprintf("`circlectl %s web` at request %d", a.verb, a.at))
	}
	fmt.Fprintf(b, "One watcher `web` runs a Python HTTP server (`python3 sockweb.py`, `http.server`, one process, bench/sockets.go) "+
		"that answers each GET with its pid, and on SIGTERM finishes the request it serves, if any, and exits 0. "+
		"**circled socket**: `[socket:web]` on 127.0.0.1 (a free port), bound by circled; the watcher has `use_sockets = true` "+
		"and the server accepts on descriptor `$(circle.sockets.web)`. **own port**: no `[socket:web]`; the server binds "+
		"127.0.0.1:PORT itself with `SO_REUSEADDR` (no `SO_REUSEPORT`), retrying every 10 ms while the port is in use "+
		"(during a reload the old process still holds it), and its listener closes when it exits. "+
		"Same daemon settings otherwise (`respawn = true`, `graceful_timeout = 10`, no readiness check, so a new process "+
		"counts as started after `min_uptime` = 1 s). The harness sends %d sequential GETs to 127.0.0.1, a new connection "+
		"each, at most one per %v, %v timeout each, after the server has run 1.5 s; another goroutine runs %s, "+
		"each once the loop has sent that many requests and the previous command has returned. A request fails on a "+
		"refused or reset connection, a timeout or a non-200. %d runs per setup. The server runs `%s` directly "+
		"(the real interpreter behind `python3`: a pyenv shim in between added about 1 s to every start).\n\n",
		sockRequests, sockPace, sockReqTO, strings.Join(acts, ", "), r.plan.sockReps, sockPython)
	b.WriteString("| daemon | mode | requests | failed | failed per run | of which after a restart / a reload | restarts (ok/done) | reloads (ok/done) | longest outage (ms) | slowest answered request (ms) | server pids per run | notes |\n|---|---|---:|---:|---|---|---:|---:|---:|---:|---|---|\n")
	failedOf := map[string]int{}
	for _, c := range r.sockets {
		for _, x := range c.results {
			failedOf[c.kind+c.label()] += x.failed
		}
	}
	for _, c := range r.sockets {
		if c.na != "" {
			fmt.Fprintf(b, "| %s | %s | — | — | — | — | — | — | — | — | — | %s |\n", kindLabel(c.kind), c.label(), c.na)
			continue
		}
		if len(c.results) == 0 {
			fmt.Fprintf(b, "| %s | %s | — | — | — | — | — | — | — | — | — | no run completed (see the notes) |\n", kindLabel(c.kind), c.label())
			continue
		}
		sent, failed, inRestart, inReload := 0, 0, 0, 0
		var per, pids []string
		var outage, slow []float64
		okRestart, nRestart, okReload, nReload := 0, 0, 0, 0
		var notes []string
		for i, x := range c.results {
			sent += x.sent
			failed += x.failed
			inRestart += x.failedIn["restart"]
			inReload += x.failedIn["reload"]
			if n := x.failedIn[""]; n > 0 {
				notes = append(notes, fmt.Sprintf("run %d: %d failed before the first action", i+1, n))
			}
			per = append(per, fmt.Sprint(x.failed))
			pids = append(pids, fmt.Sprint(x.pids))
			outage = append(outage, float64(x.outage.Microseconds())/1000)
			slow = append(slow, float64(x.slowest.Microseconds())/1000)
			for _, a := range x.actions {
				ok := a.err == ""
				if a.verb == "restart" {
					nRestart++
					if ok {
						okRestart++
					}
				} else {
					nReload++
					if ok {
						okReload++
					}
				}
				if !ok {
					notes = append(notes, fmt.Sprintf("run %d `%s` failed: %.150s", i+1, a.verb, a.err))
				}
			}
			if x.late > 0 {
				notes = append(notes, fmt.Sprintf("run %d: %d action(s) started after the last request (not measured)", i+1, x.late))
			}
			if x.sent < sockRequests {
				notes = append(notes, fmt.Sprintf("run %d: %d sent (the loop hit its %v bound)", i+1, x.sent, sockLimit))
			}
		}
		if !c.socket {
			sf, ok := failedOf[c.kind+"circled socket"]
			if ok {
				notes = append([]string{fmt.Sprintf("failures / the circled socket's: %s", ratio(float64(failed), float64(sf)))}, notes...)
			}
		}
		fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %d / %d | %d/%d | %d/%d | %s | %s | %s | %s |\n", kindLabel(c.kind), c.label(), sent, failed,
			strings.Join(per, ", "), inRestart, inReload, okRestart, nRestart, okReload, nReload, num(summarize(outage).max), num(summarize(slow).max),
			strings.Join(pids, ", "), strings.ReplaceAll(strings.Join(notes, "; "), "|", "\\|"))
	}
	for _, c := range r.sockets {
		for i, x := range c.results {
			if x.firstErr != "" {
				fmt.Fprintf(b, "\nFirst failure of %s, %s, run %d: `%.200s`\n", kindLabel(c.kind), c.label(), i+1, x.firstErr)
				break
			}
		}
	}
	for _, c := range r.sockets {
		for i, x := range c.results {
			var ts []string
			for _, a := range x.actions {
				ts = append(ts, fmt.Sprintf("%s %s ms (requests %d→%d)", a.verb, num(float64(a.took.Microseconds())/1000), a.at, a.done))
			}
			if i == 0 && len(ts) > 0 {
				fmt.Fprintf(b, "\nCommand times, %s, %s, run 1: %s.\n", kindLabel(c.kind), c.label(), strings.Join(ts, ", "))
			}
		}
	}
}
