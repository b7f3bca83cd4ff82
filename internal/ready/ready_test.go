package ready

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// wait is the bound of any wait for an event in these tests: generous, it
// only matters when something is broken.
const wait = 20 * time.Second

// execStart runs a command with exec.Cmd (tests only: circled routes it
// through its reaper).
func execStart(cmd *exec.Cmd) (<-chan int, func(), error) {
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	ch := make(chan int, 1)
	go func() {
		cmd.Wait()
		ch <- cmd.ProcessState.ExitCode()
	}()
	return ch, func() { cmd.Process.Kill() }, nil
}

// probe starts a prober and returns its result channel.
func probe(t *testing.T, opts Options) (*Prober, <-chan Result) {
	t.Helper()
	ch := make(chan Result, 2)
	p, err := StartProber(opts, func(r Result) { ch <- r })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Cancel)
	return p, ch
}

func result(t *testing.T, p *Prober, ch <-chan Result) Result {
	t.Helper()
	select {
	case r := <-ch:
		select {
		case <-p.Done():
		case <-time.After(wait):
			t.Fatal("prober still running after its report")
		}
		select {
		case r2 := <-ch:
			t.Fatalf("second report %+v", r2)
		default:
		}
		return r
	case <-time.After(wait):
		t.Fatal("no report")
	}
	return Result{}
}

// freeAddr returns a local TCP address nothing listens on (it was free a
// moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// goroutines waits until the number of goroutines is back to at most n.
func goroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTCPReadyAfterDelay(t *testing.T) {
	addr := freeAddr(t)
	p, ch := probe(t, Options{Checks: []Check{TCP(addr)}, Interval: 20 * time.Millisecond, Timeout: wait})
	var l net.Listener
	listening := make(chan error, 1)
	// Stimulus: the server starts listening later.
	time.AfterFunc(300*time.Millisecond, func() {
		var err error
		l, err = net.Listen("tcp", addr)
		listening <- err
	})
	r := result(t, p, ch)
	if err := <-listening; err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer l.Close()
	if !r.Ready {
		t.Fatalf("not ready: %s", r.Reason())
	}
}

func TestNeverReadyTimesOut(t *testing.T) {
	addr := freeAddr(t)
	// The timeout leaves a loaded host time for at least one complete
	// (refused) attempt: CI saw a 400 ms timeout end with only a dial the
	// deadline had cut.
	p, ch := probe(t, Options{Checks: []Check{TCP(addr)}, Interval: 20 * time.Millisecond, Timeout: 3 * time.Second})
	r := result(t, p, ch)
	if r.Ready || !errors.Is(r.Err, ErrTimeout) || r.Check != "tcp "+addr {
		t.Fatalf("got %+v", r)
	}
	if !strings.Contains(r.Reason(), "ready.tcp "+addr) || !strings.Contains(r.Reason(), "refused") {
		t.Errorf("reason %q", r.Reason())
	}
}

func TestHTTP(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "http://127.0.0.1:1/nowhere", http.StatusFound)
		case "/missing":
			http.NotFound(w, r)
		default:
			if hits.Add(1) <= 3 {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte(strings.Repeat("x", 1<<20)))
		}
	}))
	defer srv.Close()

	p, ch := probe(t, Options{Checks: []Check{HTTP(srv.URL + "/")}, Interval: 10 * time.Millisecond, Timeout: wait})
	if r := result(t, p, ch); !r.Ready || hits.Load() != 4 {
		t.Fatalf("got %+v after %d requests", r, hits.Load())
	}

	p, ch = probe(t, Options{Checks: []Check{HTTP(srv.URL + "/redirect")}, Timeout: wait})
	if r := result(t, p, ch); !r.Ready {
		t.Fatalf("3xx: %s", r.Reason())
	}

	p, ch = probe(t, Options{Checks: []Check{HTTP(srv.URL + "/missing")}, Interval: 10 * time.Millisecond, Timeout: 300 * time.Millisecond})
	if r := result(t, p, ch); r.Ready || !strings.Contains(r.Reason(), "404") {
		t.Fatalf("404: %+v", r)
	}
}

func TestHTTPAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p, ch := probe(t, Options{Checks: []Check{HTTP(srv.URL)}, Interval: 10 * time.Millisecond,
		AttemptTimeout: 50 * time.Millisecond, Timeout: 500 * time.Millisecond})
	if r := result(t, p, ch); r.Ready || !strings.Contains(r.Reason(), "deadline") {
		t.Fatalf("got %+v", r)
	}

	// An attempt longer than the whole timeout is cut by it: the reason
	// says no attempt finished (adding the cut attempt's error when it came
	// back before the deadline's turn) instead of passing that error off as
	// a verdict.
	p, ch = probe(t, Options{Checks: []Check{HTTP(srv.URL)}, Interval: 10 * time.Millisecond,
		AttemptTimeout: time.Minute, Timeout: 300 * time.Millisecond})
	if r := result(t, p, ch); r.Ready || !errors.Is(r.Err, ErrTimeout) || !strings.Contains(r.Reason(), "no attempt finished") {
		t.Fatalf("cut attempt: %+v", r)
	}
}

func needSh(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SKIP: no sh on Windows")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("SKIP: no sh")
	}
}

func TestExecReadyAfterDelay(t *testing.T) {
	needSh(t)
	dir := t.TempDir()
	flag := filepath.Join(dir, "up")
	var starts atomic.Int32
	start := func(cmd *exec.Cmd) (<-chan int, func(), error) {
		starts.Add(1)
		if cmd.Dir != dir || !strings.Contains(strings.Join(cmd.Env, " "), "FLAG="+flag) {
			t.Errorf("cmd dir %q env %q", cmd.Dir, cmd.Env)
		}
		return execStart(cmd)
	}
	cmd := Command{Argv: []string{"sh", "-c", `test -e "$FLAG"`}, Env: []string{"PATH=" + os.Getenv("PATH"), "FLAG=" + flag}, Dir: dir}
	p, ch := probe(t, Options{Checks: []Check{Exec(cmd, start)}, Interval: 20 * time.Millisecond, Timeout: wait})
	time.AfterFunc(300*time.Millisecond, func() { os.WriteFile(flag, nil, 0o644) }) // stimulus
	if r := result(t, p, ch); !r.Ready {
		t.Fatalf("not ready: %s", r.Reason())
	}
	if starts.Load() < 2 {
		t.Errorf("%d attempts, want several", starts.Load())
	}
}

func TestExecFailsAndHangingIsKilled(t *testing.T) {
	needSh(t)
	env := []string{"PATH=" + os.Getenv("PATH")}
	p, ch := probe(t, Options{Checks: []Check{Exec(Command{Argv: []string{"sh", "-c", "exit 3"}, Env: env}, execStart)},
		Interval: 10 * time.Millisecond, Timeout: 3 * time.Second}) // room for one fork/exec on a loaded host
	if r := result(t, p, ch); r.Ready || !strings.Contains(r.Reason(), "exit status 3") {
		t.Fatalf("got %+v", r)
	}

	killed := make(chan struct{}, 10)
	start := func(cmd *exec.Cmd) (<-chan int, func(), error) {
		exit, kill, err := execStart(cmd)
		return exit, func() {
			select {
			case killed <- struct{}{}:
			default: // one is enough
			}
			kill()
		}, err
	}
	p, ch = probe(t, Options{Checks: []Check{Exec(Command{Argv: []string{"sleep", "100"}, Env: env}, start)},
		AttemptTimeout: 50 * time.Millisecond, Timeout: 3 * time.Second})
	if r := result(t, p, ch); r.Ready || !strings.Contains(r.Reason(), "killed") {
		t.Fatalf("got %+v", r)
	}
	select {
	case <-killed:
	default:
		t.Fatal("the hanging check was not killed")
	}

	if _, err := StartProber(Options{Checks: []Check{Exec(Command{Argv: []string{"true"}}, nil)}}, nil); err == nil {
		t.Error("exec check without StartFunc accepted")
	}
	if _, err := (Command{Argv: []string{"no-such-program-here"}, Env: env}).Cmd(); err == nil {
		t.Error("missing program found")
	}
}

func TestLogAndTCPAllMustPass(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	logc, err := Log(`listening on port (\d+)$`)
	if err != nil {
		t.Fatal(err)
	}
	p, ch := probe(t, Options{Checks: []Check{logc, TCP(l.Addr().String())}, Interval: 10 * time.Millisecond, Timeout: wait})
	p.FeedLine([]byte("starting\n"))
	p.FeedLine([]byte("listening on port 8080 (soon)\r\n"))
	select {
	case r := <-ch:
		t.Fatalf("reported before the log matched: %+v", r)
	default:
	}
	p.FeedLine([]byte("listening on port 8080\r\n"))
	if r := result(t, p, ch); !r.Ready {
		t.Fatalf("not ready: %s", r.Reason())
	}
	p.FeedLine([]byte("after")) // harmless once done

	if _, err := Log("("); err == nil {
		t.Error("bad regexp accepted")
	}
	logc, _ = Log("never")
	p, ch = probe(t, Options{Checks: []Check{logc}, Timeout: 200 * time.Millisecond})
	if r := result(t, p, ch); r.Ready || r.Check != "log never" || !errors.Is(r.Err, ErrTimeout) {
		t.Fatalf("got %+v", r)
	}
}

func TestNoChecksReadyAtOnce(t *testing.T) {
	p, ch := probe(t, Options{})
	if r := result(t, p, ch); !r.Ready {
		t.Fatal(r)
	}
}

// Cancel stops every kind of check: no report, and no goroutine left.
func TestCancelLeavesNothing(t *testing.T) {
	needSh(t)
	base := runtime.NumGoroutine()
	logc, _ := Log("never")
	env := []string{"PATH=" + os.Getenv("PATH")}
	checks := []Check{TCP(freeAddr(t)), logc, Exec(Command{Argv: []string{"sleep", "100"}, Env: env}, execStart)}
	if n := listenNotifyForTest(t); n != nil {
		checks = append(checks, NotifyReady(n))
	}
	reported := make(chan Result, 1)
	p, err := StartProber(Options{Checks: checks, Interval: 10 * time.Millisecond, Timeout: time.Hour}, func(r Result) { reported <- r })
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		p.FeedLine([]byte("nothing"))
	}
	p.Cancel()
	<-p.Done()
	select {
	case r := <-reported:
		t.Fatalf("report after Cancel: %+v", r)
	default:
	}
	closeNotifyForTest(checks)
	goroutines(t, base)

	// After a report too, nothing is left.
	logc, _ = Log("up")
	p, err = StartProber(Options{Checks: []Check{logc}}, func(r Result) { reported <- r })
	if err != nil {
		t.Fatal(err)
	}
	p.FeedLine([]byte("up"))
	<-p.Done()
	if r := <-reported; !r.Ready {
		t.Fatal(r)
	}
	goroutines(t, base)
}

func TestHealth(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	base := runtime.NumGoroutine()

	reports := make(chan HealthReport, 10)
	h, err := StartHealth(HealthOptions{Checks: []Check{HTTP(srv.URL)}, Interval: 10 * time.Millisecond, Timeout: time.Second},
		func(r HealthReport) { reports <- r })
	if err != nil {
		t.Fatal(err)
	}
	next := func() HealthReport {
		t.Helper()
		select {
		case r := <-reports:
			return r
		case <-time.After(wait):
			t.Fatal("no health report")
		}
		return HealthReport{}
	}
	if r := next(); r.State != HealthHealthy || h.State() != HealthHealthy {
		t.Fatalf("got %+v", r)
	}
	failing.Store(true)
	r := next()
	if r.State != HealthUnhealthy || r.Failures != DefaultHealthRetries || !strings.Contains(r.Reason(), "500") ||
		!strings.HasPrefix(r.Reason(), "health.http ") {
		t.Fatalf("got %+v (%s)", r, r.Reason())
	}
	failing.Store(false)
	if r := next(); r.State != HealthHealthy {
		t.Fatalf("got %+v", r)
	}
	h.Stop()
	<-h.Done()
	goroutines(t, base)

	// Not configured: nothing runs.
	h, err = StartHealth(HealthOptions{}, nil)
	if h != nil || err != nil || h.State() != HealthUnknown {
		t.Fatalf("no checks: %v %v", h, err)
	}
	h.Stop()
	<-h.Done()
	logc, _ := Log("x")
	if _, err := StartHealth(HealthOptions{Checks: []Check{logc}}, nil); err == nil {
		t.Error("log as a health check accepted")
	}
}

func TestHealthTCPRetries(t *testing.T) {
	addr := freeAddr(t)
	reports := make(chan HealthReport, 10)
	var rounds atomic.Int32
	h, err := StartHealth(HealthOptions{Checks: []Check{TCP(addr)}, Interval: 5 * time.Millisecond, Retries: 5},
		func(r HealthReport) { rounds.Store(int32(r.Failures)); reports <- r })
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	select {
	case r := <-reports:
		if r.State != HealthUnhealthy || r.Failures != 5 {
			t.Fatalf("got %+v", r)
		}
	case <-time.After(wait):
		t.Fatal("no report")
	}
}
