package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens a unix datagram socket at addr, like systemd's notify
// socket, and returns a function that reads the next datagram.
func listen(t *testing.T, addr string) func() string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read datagram: %v", err)
		}
		return string(buf[:n])
	}
}

// socketPath is a socket path short enough for sun_path (108 bytes).
func socketPath(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("unix datagram sockets are not supported on windows")
	}
	d, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "notify.sock")
}

func TestNotifierSends(t *testing.T) {
	path := socketPath(t)
	recv := listen(t, path)
	t.Setenv(EnvSocket, path)
	n := FromEnv(false)

	sends := []struct {
		name string
		send func() (bool, error)
		want string // prefix of the datagram
	}{
		{"Ready", n.Ready, "READY=1"},
		{"Stopping", n.Stopping, "STOPPING=1"},
		{"Notify", func() (bool, error) { return n.Notify("STATUS=x\nREADY=1") }, "STATUS=x\nREADY=1"},
		{"package Notify", func() (bool, error) { return Notify("READY=1") }, "READY=1"},
		{"package Status", func() (bool, error) { return Status("a\nb\r\nc") }, "STATUS=a b c"},
		{"Reloading", n.Reloading, "RELOADING=1"},
	}
	for _, s := range sends {
		sent, err := s.send()
		if !sent || err != nil {
			t.Fatalf("%s() = %v, %v; want true, nil", s.name, sent, err)
		}
		got := recv()
		if s.name == "Reloading" {
			checkReloading(t, got)
			continue
		}
		if got != s.want {
			t.Errorf("%s sent %q, want %q", s.name, got, s.want)
		}
	}
}

// checkReloading: RELOADING=1, and on Linux a MONOTONIC_USEC close to now.
func checkReloading(t *testing.T, got string) {
	t.Helper()
	lines := strings.Split(got, "\n")
	if lines[0] != "RELOADING=1" {
		t.Fatalf("Reloading sent %q, want RELOADING=1 first", got)
	}
	if runtime.GOOS != "linux" {
		return
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("Reloading sent %q, want RELOADING=1\\nMONOTONIC_USEC=N", got)
	}
	usec, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC: %v", err)
	}
	now, _ := monotonicUsec()
	if usec == 0 || usec > now || now-usec > uint64(10*time.Second/time.Microsecond) {
		t.Errorf("MONOTONIC_USEC=%d, now %d", usec, now)
	}
}

func TestAbstractSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract unix sockets exist only on Linux")
	}
	name := fmt.Sprintf("@circled-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	recv := listen(t, name)
	if sent, err := New(name).Ready(); !sent || err != nil {
		t.Fatalf("Ready() = %v, %v; want true, nil", sent, err)
	}
	if got := recv(); got != "READY=1" {
		t.Errorf("got %q, want READY=1", got)
	}
}

func TestUnsetIsNoOp(t *testing.T) {
	t.Setenv(EnvSocket, "")
	os.Unsetenv(EnvSocket)
	n := FromEnv(false)
	for name, f := range map[string]func() (bool, error){
		"Ready": n.Ready, "Reloading": n.Reloading, "Stopping": n.Stopping,
		"Notify":         func() (bool, error) { return n.Notify("READY=1") },
		"package Notify": func() (bool, error) { return Notify("READY=1") },
		"package Status": func() (bool, error) { return Status("x") },
	} {
		if sent, err := f(); sent || err != nil {
			t.Errorf("%s() without NOTIFY_SOCKET = %v, %v; want false, nil", name, sent, err)
		}
	}
	var zero Notifier
	var nilN *Notifier
	for _, n := range []*Notifier{&zero, nilN, New("")} {
		if sent, err := n.Ready(); sent || err != nil || n.Enabled() {
			t.Errorf("empty Notifier: Ready() = %v, %v, Enabled %v; want false, nil, false", sent, err, n.Enabled())
		}
	}
}

func TestFromEnvUnsets(t *testing.T) {
	path := socketPath(t)
	recv := listen(t, path)
	t.Setenv(EnvSocket, path)

	n := FromEnv(true)
	if _, set := os.LookupEnv(EnvSocket); set {
		t.Fatal("FromEnv(true) left NOTIFY_SOCKET set: children would inherit it")
	}
	if n.Socket() != path || !n.Enabled() {
		t.Fatalf("FromEnv(true).Socket() = %q, want %q", n.Socket(), path)
	}
	// A Notifier read from the environment now sends nothing; n still sends.
	if sent, err := FromEnv(false).Ready(); sent || err != nil {
		t.Errorf("Ready() after unset = %v, %v; want false, nil", sent, err)
	}
	if sent, err := n.Ready(); !sent || err != nil {
		t.Fatalf("n.Ready() = %v, %v", sent, err)
	}
	if got := recv(); got != "READY=1" {
		t.Errorf("got %q, want READY=1", got)
	}

	t.Setenv(EnvSocket, path)
	if FromEnv(false); os.Getenv(EnvSocket) != path {
		t.Error("FromEnv(false) changed NOTIFY_SOCKET")
	}
}

func TestErrors(t *testing.T) {
	for _, addr := range []string{"vsock:2:1234", "relative/notify.sock", "@"} {
		sent, err := New(addr).Ready()
		if sent || !errors.Is(err, ErrUnsupported) {
			t.Errorf("New(%q).Ready() = %v, %v; want false, ErrUnsupported", addr, sent, err)
		}
	}
	// Nobody listens: the send fails with an error, not a hang.
	path := socketPath(t)
	sent, err := New(path).Ready()
	if sent || err == nil || !strings.HasPrefix(err.Error(), "sdnotify: ") {
		t.Errorf("Ready() to %s with no listener = %v, %v; want false and an sdnotify error", path, sent, err)
	}
}
