package evlistener

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// These tests run real listener processes, started the way the watcher
// starts them: stdin from Pool.Stdin, stdout through a pipe pumped into
// Pool.Stdout's writer, which is closed at EOF.

// python is python3's interpreter itself (testhelper.Python3).
var python = testhelper.Python3

func needPython(t *testing.T) string {
	t.Helper()
	py, err := python()
	if err != nil {
		t.Skip("SKIP: python3 is not installed: the listeners of these tests are Python scripts: ", err)
	}
	return py
}

type proc struct {
	cmd    *exec.Cmd
	done   chan struct{} // the stdout pump ended
	stderr *logBuf
}

// start runs script as slot wid of p, with env added to the environment.
func start(t *testing.T, p *Pool, wid int, script string, env ...string) *proc {
	t.Helper()
	return startWith(t, needPython(t), p, wid, script, env...)
}

func startWith(t *testing.T, py string, p *Pool, wid int, script string, env ...string) *proc {
	t.Helper()
	stdin, err := p.Stdin(wid)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr := &proc{done: make(chan struct{}), stderr: &logBuf{}}
	pr.cmd = exec.Command(py, filepath.Join("testdata", script))
	pr.cmd.Stdin, pr.cmd.Stdout, pr.cmd.Stderr = stdin, w, pr.stderr
	pr.cmd.Env = append(os.Environ(), append([]string{"PYTHONUTF8=1", "PYTHONDONTWRITEBYTECODE=1"}, env...)...)
	err = pr.cmd.Start()
	stdin.Close()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	out := p.Stdout(nil).Open(wid, pr.cmd.Process.Pid)
	go func() {
		io.Copy(out, r)
		out.Close()
		r.Close()
		close(pr.done)
	}()
	t.Cleanup(func() {
		pr.cmd.Process.Kill()
		pr.cmd.Wait()
		<-pr.done
		if t.Failed() && pr.stderr.String() != "" {
			t.Logf("%s (wid %d) stderr:\n%s", script, wid, pr.stderr)
		}
	})
	return pr
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type record struct {
	pid     string
	header  map[string]string
	line    string
	payload string
}

// records reads listener.py's record file.
func records(t *testing.T, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []record
	for l := range strings.Lines(string(b)) {
		f := strings.SplitN(strings.TrimSuffix(l, "\n"), "\t", 3)
		if len(f) != 3 {
			continue // a line being written
		}
		h := map[string]string{}
		for _, kv := range strings.Fields(f[1]) {
			k, v, _ := strings.Cut(kv, ":")
			h[k] = v
		}
		out = append(out, record{pid: f[0], header: h, line: f[1], payload: strings.ReplaceAll(f[2], `\n`, "\n")})
	}
	return out
}

func waitRecords(t *testing.T, path string, n int) []record {
	t.Helper()
	var rs []record
	waitFor(t, 20*time.Second, "listener records", func() bool { rs = records(t, path); return len(rs) >= n })
	return rs
}

func waitState(t *testing.T, p *Pool, wid int, state string) {
	t.Helper()
	waitFor(t, 20*time.Second, "listener state "+state, func() bool { return p.ListenerState(wid) == state })
}

var headerRE = regexp.MustCompile(`^ver:3\.0 server:supervisor serial:\d+ pool:crash poolserial:\d+ eventname:PROCESS_STATE_EXITED len:\d+$`)

func TestListenerGetsExitedEvents(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, _ := newPool(t, b, "crash", 10, "PROCESS_STATE_EXITED")
	rec := filepath.Join(t.TempDir(), "rec")
	pr := start(t, p, 1, "listener.py", "RECORD="+rec)
	var want []string
	for i, name := range []string{"web", "worker_1", "worker_2"} {
		ev := StateChange{Process: name, Group: strings.Split(name, "_")[0], From: StateRunning, To: StateExited, PID: 1000 + i, Expected: i == 1}.Event()
		want = append(want, ev.Payload)
		b.Publish(ev)
		b.Publish(StateChange{Process: name, Group: name, From: StateExited, To: StateStarting}.Event()) // not subscribed
	}
	rs := waitRecords(t, rec, 3)
	for i, r := range rs {
		if !headerRE.MatchString(r.line) || r.payload != want[i] || r.header["poolserial"] != strconv.Itoa(i) {
			t.Errorf("event %d: header %q payload %q, want payload %q", i, r.line, r.payload, want[i])
		}
	}
	waitState(t, p, 1, Ready)
	if p.Buffered() != 0 {
		t.Errorf("%d events still buffered", p.Buffered())
	}
	// Its stdin closes when the pool does: the listener sees EOF and ends.
	p.Close()
	select {
	case <-pr.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the listener did not end after its pool closed")
	}
}

func TestListenerFailRedelivers(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, lb := newPool(t, b, "crash", 10, "PROCESS_STATE")
	rec := filepath.Join(t.TempDir(), "rec")
	start(t, p, 1, "listener.py", "RECORD="+rec, "MODE=failonce")
	b.Publish(exited("web", 1))
	b.Publish(exited("web", 2))
	rs := waitRecords(t, rec, 4)
	var got []string
	for _, r := range rs {
		got = append(got, r.header["serial"])
	}
	if strings.Join(got, ",") != "0,0,1,1" {
		t.Errorf("serials delivered %v, want 0,0,1,1 (each FAILed once, then sent again)", got)
	}
	if rs[0].payload != rs[1].payload {
		t.Errorf("redelivery changed the payload: %q then %q", rs[0].payload, rs[1].payload)
	}
	if n := strings.Count(lb.String(), "event was rejected"); n != 2 {
		t.Errorf("%d rejections logged, want 2", n)
	}
}

func TestListenerOverflow(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, lb := newPool(t, b, "crash", 2, "PROCESS_STATE")
	for i := range 5 {
		b.Publish(exited("web", 10+i))
	}
	rec := filepath.Join(t.TempDir(), "rec")
	start(t, p, 1, "listener.py", "RECORD="+rec)
	rs := waitRecords(t, rec, 2)
	waitState(t, p, 1, Ready)
	rs = records(t, rec)
	if len(rs) != 2 || rs[0].header["serial"] != "3" || rs[1].header["serial"] != "4" {
		t.Errorf("got %v, want only the newest two (serials 3, 4)", rs)
	}
	if p.Dropped() != 3 || strings.Count(lb.String(), "event buffer overflowed") != 3 {
		t.Errorf("dropped %d, log:\n%s", p.Dropped(), lb)
	}
}

// A listener that dies with an event in flight: the event goes to the
// pool's other listener, or to the same slot once it is restarted.
func TestListenerDiesMidEvent(t *testing.T) {
	t.Run("numprocs=2", func(t *testing.T) {
		b := NewBus("")
		defer b.Close()
		p, _ := newPool(t, b, "crash", 10, "PROCESS_STATE")
		dir := t.TempDir()
		dying := start(t, p, 1, "listener.py", "RECORD="+filepath.Join(dir, "rec1"), "MODE=die")
		waitState(t, p, 1, Ready)
		start(t, p, 2, "listener.py", "RECORD="+filepath.Join(dir, "rec2"))
		waitState(t, p, 2, Ready)
		b.Publish(exited("web", 77))
		r1 := waitRecords(t, filepath.Join(dir, "rec1"), 1)
		r2 := waitRecords(t, filepath.Join(dir, "rec2"), 1)
		if r1[0].line != r2[0].line || r1[0].payload != r2[0].payload {
			t.Errorf("wid 1 got %q %q, wid 2 %q %q: want the same event", r1[0].line, r1[0].payload, r2[0].line, r2[0].payload)
		}
		dying.cmd.Wait()
		if c := dying.cmd.ProcessState.ExitCode(); c != 3 {
			t.Errorf("dying listener exited %d, want 3", c)
		}
	})
	t.Run("restarted", func(t *testing.T) {
		b := NewBus("")
		defer b.Close()
		p, _ := newPool(t, b, "crash", 10, "PROCESS_STATE")
		dir := t.TempDir()
		env := []string{"RECORD=" + filepath.Join(dir, "rec"), "MODE=dieonce", "MARK=" + filepath.Join(dir, "mark")}
		first := start(t, p, 1, "listener.py", env...)
		b.Publish(exited("web", 78))
		<-first.done // it read the event and died; EOF gave it back
		if p.Buffered() != 1 {
			t.Fatalf("buffered %d after the listener died, want 1", p.Buffered())
		}
		start(t, p, 1, "listener.py", env...) // the watcher's restart
		rs := waitRecords(t, filepath.Join(dir, "rec"), 2)
		if rs[0].pid == rs[1].pid || rs[0].line != rs[1].line {
			t.Errorf("records %v: want the same event in two processes", rs)
		}
		waitState(t, p, 1, Ready)
	})
}

// A listener whose stdout is not the protocol enters UNKNOWN and gets no
// events; its events wait for a listener that speaks it.
func TestListenerGarbage(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, lb := newPool(t, b, "crash", 10, "PROCESS_STATE")
	dir := t.TempDir()
	start(t, p, 1, "listener.py", "RECORD="+filepath.Join(dir, "rec1"), "MODE=garbage")
	waitState(t, p, 1, Unknown)
	b.Publish(exited("web", 5))
	start(t, p, 2, "listener.py", "RECORD="+filepath.Join(dir, "rec2"))
	waitRecords(t, filepath.Join(dir, "rec2"), 1)
	if rs := records(t, filepath.Join(dir, "rec1")); len(rs) != 0 {
		t.Errorf("the UNKNOWN listener got %v", rs)
	}
	if !strings.Contains(lb.String(), "hello, I am not a listener") {
		t.Errorf("the warning does not quote the output:\n%s", lb)
	}
}

func TestListenerTick5(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, _ := newPool(t, b, "ticks", 10, "TICK_5")
	rec := filepath.Join(t.TempDir(), "rec")
	start(t, p, 1, "listener.py", "RECORD="+rec)
	rs := waitRecords(t, rec, 1)
	r := rs[0]
	var when int64
	if r.header["eventname"] != "TICK_5" || !regexp.MustCompile(`^when:\d+$`).MatchString(r.payload) {
		t.Fatalf("got %q %q", r.line, r.payload)
	}
	when, _ = strconv.ParseInt(strings.TrimPrefix(r.payload, "when:"), 10, 64)
	if when%5 != 0 || when > time.Now().Unix() || when < time.Now().Unix()-60 {
		t.Errorf("when:%d is not a recent multiple of 5", when)
	}
}

// A listener built on supervisor.childutils, the helper superlance's
// crashmail, memmon and httpok are built on, from Debian's supervisor.
func TestChildutilsListener(t *testing.T) {
	needPython(t)
	var py string
	for _, c := range []string{"/usr/bin/python3", "python3"} { // Debian's first: its package installs there
		if err := exec.Command(c, "-c", "import supervisor.childutils").Run(); err == nil {
			py = c
			break
		}
	}
	if py == "" {
		t.Skip("SKIP: no python3 can import supervisor.childutils (Debian package supervisor is not installed)")
	}
	b := NewBus("")
	defer b.Close()
	p, _ := newPool(t, b, "cu", 10, "PROCESS_STATE_EXITED", "PROCESS_LOG")
	rec := filepath.Join(t.TempDir(), "rec")
	startWith(t, py, p, 1, "childutils_listener.py", "RECORD="+rec)
	b.Publish(ProcessLog("web", "web", 9, "stdout", []byte("héllo wörld ✓\n")))
	b.Publish(exited("web", 10))
	b.Publish(StateChange{Process: "db", Group: "db", From: StateRunning, To: StateExited, PID: 11, Expected: true}.Event())
	var got []byte
	waitFor(t, 20*time.Second, "3 records", func() bool {
		got, _ = os.ReadFile(rec)
		return bytes.Count(got, []byte("\n")) >= 3
	})
	want := "PROCESS_LOG_STDOUT\tprocessname:web groupname:web pid:9 channel:stdout\\nhéllo wörld ✓\\n\n" +
		"PROCESS_STATE_EXITED\tprocessname=web expected=0\n" +
		"PROCESS_STATE_EXITED\tprocessname=db expected=1\n"
	if string(got) != want {
		t.Errorf("childutils listener recorded\n%s\nwant\n%s", got, want)
	}
	waitState(t, p, 1, Ready)
}

// fakeRPC serves a stand-in for circled's /RPC2 on ln: it records each
// call's method and first string parameter, answers True, and with user
// set wants HTTP basic auth.
func fakeRPC(t *testing.T, ln net.Listener, user, pass string) <-chan string {
	calls := make(chan string, 10)
	re := regexp.MustCompile(`(?s)<methodName>([^<]*)</methodName>.*<string>([^<]*)</string>`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, pw, _ := r.BasicAuth(); user != "" && (u != user || pw != pass) {
			calls <- "401"
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		m := re.FindSubmatch(body)
		if r.URL.Path != "/RPC2" || m == nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		calls <- string(m[1]) + " " + string(m[2])
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<?xml version="1.0"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return calls
}

// testdata/restart_on_exit.py, the listener of issue 18's end-to-end
// test, restarts an exited process through XML-RPC on the URL circled
// gives it (SUPERVISOR_SERVER_URL): over a unix socket, and over HTTP
// with basic auth (SUPERVISOR_USERNAME, SUPERVISOR_PASSWORD).
func TestRestartOnExitListener(t *testing.T) {
	for _, kind := range []string{"unix", "http"} {
		t.Run(kind, func(t *testing.T) {
			var ln net.Listener
			var err error
			env := []string{"PROGRAMS=web,db"}
			if kind == "unix" {
				sock := filepath.Join(t.TempDir(), "rpc.sock")
				if len(sock) > 100 {
					sock = filepath.Join(os.TempDir(), fmt.Sprintf("evl%d.sock", os.Getpid()))
					t.Cleanup(func() { os.Remove(sock) })
				}
				ln, err = net.Listen("unix", sock)
				env = append(env, "SUPERVISOR_SERVER_URL=unix://"+sock)
			} else {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
				if err == nil {
					env = append(env, "SUPERVISOR_SERVER_URL=http://"+ln.Addr().String(),
						"SUPERVISOR_USERNAME=user", "SUPERVISOR_PASSWORD=p@ss:word")
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			user := ""
			if kind == "http" {
				user = "user"
			}
			calls := fakeRPC(t, ln, user, "p@ss:word")

			b := NewBus("")
			defer b.Close()
			p, _ := newPool(t, b, "restarter", 10, "PROCESS_STATE_EXITED")
			rec := filepath.Join(t.TempDir(), "rec")
			start(t, p, 1, "restart_on_exit.py", append(env, "RECORD="+rec)...)
			b.Publish(StateChange{Process: "other", Group: "other", From: StateRunning, To: StateExited, PID: 5}.Event())
			b.Publish(StateChange{Process: "web_2", Group: "web", From: StateRunning, To: StateExited, PID: 6}.Event())
			select {
			case c := <-calls:
				if c != "supervisor.startProcess web:web_2" {
					t.Errorf("call %q, want supervisor.startProcess web:web_2", c)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no XML-RPC call within 20s")
			}
			var got []byte
			waitFor(t, 20*time.Second, "the listener's record", func() bool {
				got, _ = os.ReadFile(rec)
				return bytes.Count(got, []byte("\n")) >= 2
			})
			if want := "web:web_2 6 0\nstartProcess web:web_2: True\n"; string(got) != want {
				t.Errorf("record %q, want %q", got, want)
			}
			select {
			case c := <-calls:
				t.Errorf("unexpected call %q", c)
			default:
			}
		})
	}
}
