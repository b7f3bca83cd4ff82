//go:build unix

package ready

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/sdnotify"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// TestMain doubles as a client of the notify protocol: with
// READY_TEST_HELPER set, the test binary sends with internal/sdnotify,
// exactly as a supervised program calling sd_notify(3) would.
func TestMain(m *testing.M) {
	if mode := os.Getenv("READY_TEST_HELPER"); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	send := func(s string) {
		if ok, err := sdnotify.Notify(s); !ok || err != nil {
			fmt.Fprintf(os.Stderr, "notify %q: %v %v\n", s, ok, err)
			os.Exit(2)
		}
	}
	switch mode {
	case "ready":
		sdnotify.Status("warming up")
		if os.Getenv("WATCHDOG_USEC") == "" {
			send("READY=1\nSTATUS=serving")
		} else {
			send("READY=1\nSTATUS=serving\nWATCHDOG=1")
		}
	case "child":
		// A grandchild of the supervised process sends (a forking server).
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "READY_TEST_HELPER=ready")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return 3
		}
	}
	io.Copy(io.Discard, os.Stdin) // stay up until the test closes stdin
	return 0
}

// child starts the test binary as a helper with env; closing the returned
// stdin ends it.
func child(t *testing.T, mode string, env []string) (*exec.Cmd, io.Closer) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), "READY_TEST_HELPER="+mode), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	return cmd, in
}

// sockDir is a short private directory (socket paths are limited to 103 bytes).
func sockDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "rdy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func listenNotifyForTest(t *testing.T) *NotifySocket {
	n, err := ListenNotify(NotifyOptions{Dir: sockDir(t), UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func closeNotifyForTest(checks []Check) {
	for _, c := range checks {
		if c.notify != nil {
			c.notify.Close()
		}
	}
}

type eventLog chan Event

func (l eventLog) until(t *testing.T, k EventKind) Event {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e := <-l:
			if e.Kind == k {
				return e
			}
		case <-timeout:
			t.Fatalf("no %v event", k)
		}
	}
}

func TestNotifyReadyStatusWatchdog(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprint("abstract=", abstract), func(t *testing.T) {
			if abstract && !abstractSupported {
				t.Skip("SKIP: no abstract sockets here")
			}
			base := runtime.NumGoroutine()
			events := make(eventLog, 100)
			opts := NotifyOptions{Abstract: abstract, UID: -1, GID: -1, Watchdog: 300 * time.Millisecond,
				OnEvent: func(e Event) { events <- e }}
			if !abstract {
				opts.Dir = sockDir(t)
			}
			n, err := ListenNotify(opts)
			if err != nil {
				t.Fatal(err)
			}
			if abstract != strings.HasPrefix(n.Addr(), "@") {
				t.Fatalf("addr %q", n.Addr())
			}
			if !abstract {
				fi, err := os.Stat(n.Addr())
				if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
					t.Fatalf("socket file: %v %v", fi, err)
				}
			}
			env := n.Env(0)
			if len(env) != 2 || env[0] != "NOTIFY_SOCKET="+n.Addr() || env[1] != "WATCHDOG_USEC=300000" {
				t.Fatalf("env %q", env)
			}
			if e := n.Env(42); e[2] != "WATCHDOG_PID=42" {
				t.Fatalf("env %q", e)
			}
			p, ch := probe(t, Options{Checks: []Check{NotifyReady(n)}, Timeout: wait})
			cmd, stdin := child(t, "ready", env)
			n.SetPID(cmd.Process.Pid)
			if r := result(t, p, ch); !r.Ready {
				t.Fatalf("not ready: %s", r.Reason())
			}
			if e := events.until(t, EventStatus); e.Text != "warming up" || e.PID != cmd.Process.Pid {
				t.Errorf("first status %+v", e)
			}
			events.until(t, EventReady)
			events.until(t, EventWatchdog)
			// The helper pings once and then stays silent: the watchdog fires.
			if e := events.until(t, EventWatchdogTimeout); !strings.Contains(e.Text, "WATCHDOG=1") {
				t.Errorf("timeout event %+v", e)
			}
			st := n.State()
			if !st.Ready || st.Status != "serving" || st.LastPing.IsZero() || n.Status() != "serving" {
				t.Errorf("state %+v", st)
			}

			// A sender outside the process's tree (the test itself) is refused.
			if ok, err := sdnotify.New(n.Addr()).Notify("STATUS=forged\nMAINPID=1"); !ok || err != nil {
				t.Fatal(ok, err)
			}
			if e := events.until(t, EventRejected); e.PID != os.Getpid() {
				t.Errorf("rejected %+v", e)
			}
			if n.Status() != "serving" || n.State().Rejected != 1 {
				t.Errorf("forged message applied: %+v", n.State())
			}
			stdin.Close()
			cmd.Wait()
			n.Close()
			if !abstract {
				if _, err := os.Lstat(n.Addr()); !os.IsNotExist(err) {
					t.Errorf("socket file left: %v", err)
				}
			}
			goroutines(t, base)
		})
	}
}

// Messages of a grandchild (a forking server's worker) are accepted, and
// so are messages sent before SetPID.
func TestNotifyFromDescendant(t *testing.T) {
	events := make(eventLog, 100)
	n, err := ListenNotify(NotifyOptions{Dir: sockDir(t), Name: "web.1", UID: -1, GID: -1, OnEvent: func(e Event) { events <- e }})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if filepath.Base(n.Addr()) != "web.1" {
		t.Fatal(n.Addr())
	}
	p, ch := probe(t, Options{Checks: []Check{NotifyReady(n)}, Timeout: wait})
	cmd, _ := child(t, "child", n.Env(0))
	n.SetPID(cmd.Process.Pid)
	if r := result(t, p, ch); !r.Ready {
		t.Fatal(r.Reason())
	}
	if n.State().Rejected != 0 {
		t.Errorf("state %+v", n.State())
	}
}

// Programs that are not Go: python's socket module, and systemd-notify(1)
// (a short-lived sender, gone by the time its message is read).
func TestNotifyOtherClients(t *testing.T) {
	clients := map[string][]string{
		"python3": {"python3", "-c", `import os, socket, sys
a = os.environ["NOTIFY_SOCKET"]
if a.startswith("@"): a = "\0" + a[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=from python3\nREADY=1", a)
sys.stdin.read()`},
		"systemd-notify": {"sh", "-c", `systemd-notify --status="from systemd-notify" --ready && exec cat >/dev/null`},
	}
	for name, argv := range clients {
		t.Run(name, func(t *testing.T) {
			if _, err := exec.LookPath(name); err != nil {
				t.Skipf("SKIP: %s not installed", name)
			}
			if name == "python3" {
				argv = append([]string{pythonExe(t)}, argv[1:]...)
			}
			n := listenNotifyForTest(t)
			defer n.Close()
			p, ch := probe(t, Options{Checks: []Check{NotifyReady(n)}, Timeout: wait})
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), n.Env(0)...)
			out := &strings.Builder{}
			cmd.Stderr = out
			stdin, _ := cmd.StdinPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { stdin.Close(); cmd.Wait() }()
			n.SetPID(cmd.Process.Pid)
			r := result(t, p, ch)
			if !r.Ready {
				stdin.Close()
				cmd.Wait()
				if name == "systemd-notify" {
					t.Skipf("SKIP: systemd-notify did not deliver here (%s): %s", r.Reason(), out)
				}
				t.Fatalf("%s (stderr %s)", r.Reason(), out)
			}
			if want := "from " + name; n.Status() != want {
				t.Errorf("status %q, want %q", n.Status(), want)
			}
		})
	}
}

// pythonExe is python3's interpreter itself, not a wrapper such as a
// pyenv shim (bash, then pyenv exec and its helpers: at a load of 35 on
// 2 cores the shim's python did not send READY=1 within 20 s).
func pythonExe(t *testing.T) string {
	t.Helper()
	if py, err := testhelper.Python3(); err == nil {
		return py
	}
	return "python3"
}

func TestNotifyTimeoutAndExtend(t *testing.T) {
	n := listenNotifyForTest(t)
	defer n.Close()
	p, ch := probe(t, Options{Checks: []Check{NotifyReady(n)}, Timeout: 300 * time.Millisecond})
	n.SetPID(os.Getpid()) // the test sends itself
	if ok, err := sdnotify.New(n.Addr()).Status("migrating"); !ok || err != nil {
		t.Fatal(err)
	}
	r := result(t, p, ch)
	if r.Ready || !strings.Contains(r.Reason(), "no READY=1") {
		t.Fatalf("got %+v", r)
	}
	if !strings.Contains(r.Reason(), "migrating") {
		t.Logf("status not yet seen at the timeout: %s", r.Reason())
	}

	// EXTEND_TIMEOUT_USEC moves the deadline: READY=1 arrives after the
	// original timeout and is still in time. The probe starts once the
	// socket has read the extension (on a loaded host its reader could
	// otherwise come to it after the original timeout), and that timeout
	// leaves the prober's goroutine time to start: one that ran after the
	// deadline would find it and the extension both pending.
	extended := make(chan struct{}, 1)
	n2, err := ListenNotify(NotifyOptions{Dir: sockDir(t), UID: -1, GID: -1, OnEvent: func(e Event) {
		if e.Kind == EventExtendTimeout {
			select {
			case extended <- struct{}{}:
			default:
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	n2.SetPID(os.Getpid())
	c := sdnotify.New(n2.Addr())
	if _, err := c.Notify("EXTEND_TIMEOUT_USEC=60000000"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-extended:
	case <-time.After(wait):
		t.Fatal("the socket did not read EXTEND_TIMEOUT_USEC")
	}
	const timeout = time.Second
	p, ch = probe(t, Options{Checks: []Check{NotifyReady(n2)}, Timeout: timeout})
	time.AfterFunc(2*timeout, func() { c.Ready() }) // stimulus, later than Timeout
	if r := result(t, p, ch); !r.Ready {
		t.Fatalf("extended: %s", r.Reason())
	}
}

func TestNotifyErrors(t *testing.T) {
	if _, err := ListenNotify(NotifyOptions{}); err == nil {
		t.Error("no directory accepted")
	}
	if _, err := ListenNotify(NotifyOptions{Dir: "/" + strings.Repeat("d", 120)}); err == nil {
		t.Error("long path accepted")
	}
	var nilSock *NotifySocket
	if nilSock.Env(1) != nil || nilSock.Addr() != "" || nilSock.Close() != nil {
		t.Error("nil socket")
	}
	_ = net.ErrClosed
}
