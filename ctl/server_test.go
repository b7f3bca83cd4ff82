package ctl_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// alive asserts the daemon still answers a normal client.
func alive(t *testing.T, sock string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ctl.NewClient(sock).Status(ctx, nil); err != nil {
		t.Fatalf("server no longer answers: %v", err)
	}
}

// readUntilClosed reads conn until the server closes it, failing after d.
func readUntilClosed(t *testing.T, conn net.Conn, d time.Duration) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not close the connection within %v (read %q)", d, b)
	}
	return string(b)
}

func TestGarbage(t *testing.T) {
	sock := startServer(t, ctltest.NewFake("web"))
	for _, garbage := range []string{
		"\x00\x01\x02\xff\xfe garbage\r\n\r\n",
		"HELLO\r\n\r\n",
		"GET /v1/watchers HTTP/9.9\r\n\r\n",
		"GET /v1/watchers HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: "+strings.Repeat("a", 1000)+"\r\n", 200) + "\r\n",
		"POST /v1/start HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
		"POST /v1/start HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(garbage)); err != nil {
			t.Fatal(err)
		}
		reply := readUntilClosed(t, conn, 5*time.Second)
		conn.Close()
		if reply != "" && !strings.HasPrefix(reply, "HTTP/1.1 4") && !strings.HasPrefix(reply, "HTTP/1.1 505") {
			t.Errorf("garbage %.30q: reply %.80q, want a 4xx/505 or a close", garbage, reply)
		}
		alive(t, sock)
	}
}

func TestBodyTooLarge(t *testing.T) {
	sock := startServer(t, ctltest.NewFake("web"))
	hc := rawClient(sock)
	big := `{"names":["` + strings.Repeat("a", 2<<20) + `"]}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body) // hides the length: chunked encoding
		}
		resp, err := hc.Post("http://circled/v1/start", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"kind":"bad_request"`) {
			t.Errorf("chunked=%v: %d %s, want 413 bad_request", chunked, resp.StatusCode, b)
		}
	}
	alive(t, sock)
}

func TestHalfOpen(t *testing.T) {
	// The timeouts apply to every connection, alive's too: a loaded
	// machine that takes longer than readHeader between its client's
	// connect and the request's first bytes has the server close a
	// healthy client (200 ms was within reach of a loaded 2-core host).
	sock := startServer(t, ctltest.NewFake("web"), serverOpts{
		readHeader: 2 * time.Second, read: 3 * time.Second, idle: 3 * time.Second})

	silent, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	halfHeader, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer halfHeader.Close()
	halfHeader.Write([]byte("GET /v1/watchers HTTP/1.1\r\nHost: circled\r\n"))
	halfBody, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer halfBody.Close()
	halfBody.Write([]byte("POST /v1/start HTTP/1.1\r\nHost: circled\r\nContent-Length: 100\r\n\r\n{\"names\":"))

	// Other clients are served while those hang.
	alive(t, sock)

	// Closed after the timeouts, 2-3 s: waiting 20 s fails only a
	// server that never closes them, not a slow machine.
	readUntilClosed(t, silent, 20*time.Second)
	readUntilClosed(t, halfHeader, 20*time.Second)
	if reply := readUntilClosed(t, halfBody, 20*time.Second); reply != "" && !strings.HasPrefix(reply, "HTTP/1.1 400") {
		t.Errorf("half body: reply %.80q, want a 400 or a close", reply)
	}

	// An idle keep-alive connection is closed too.
	idle, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.Write([]byte("GET /v1/version HTTP/1.1\r\nHost: circled\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	readUntilClosed(t, idle, 20*time.Second)
	alive(t, sock)
}

func TestServeStopsOnCancel(t *testing.T) {
	sock := filepath.Join(testhelper.ShortDir(t), "c.sock")
	ln, err := ctl.Listen(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Serve(ctx, ln, ctl.NewHandler(ctltest.NewFake("web"), nil)) }()
	alive(t, sock)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Serve returned: %v", err)
	}
}

func TestListenStale(t *testing.T) {
	sock := filepath.Join(testhelper.ShortDir(t), "c.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // a crashed daemon: the file stays, nobody listens
	if _, err := os.Lstat(sock); err != nil {
		t.Fatal(err)
	}
	ln2, err := ctl.Listen(sock, 0o600)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln2.Close()
}

func TestListenLive(t *testing.T) {
	sock := startServer(t, ctltest.NewFake("web"))
	ln, err := ctl.Listen(sock, 0o600)
	if err == nil {
		ln.Close()
		t.Fatal("second Listen on a live socket succeeded")
	}
	if !errors.Is(err, ctl.ErrSocketInUse) || !strings.Contains(err.Error(), sock) ||
		!strings.Contains(err.Error(), "another circled is running") {
		t.Errorf("error %q: want ErrSocketInUse naming %s", err, sock)
	}
	alive(t, sock)
}

func TestListenNotSocket(t *testing.T) {
	path := filepath.Join(testhelper.ShortDir(t), "c.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := ctl.Listen(path, 0o600)
	if err == nil {
		ln.Close()
		t.Fatal("Listen over a regular file succeeded")
	}
	if !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("error %q: want it to say not a socket", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Errorf("regular file damaged: %q, %v", b, err)
	}
}

func TestListenModeAndDir(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o660} {
		dir := filepath.Join(testhelper.ShortDir(t), "a", "b")
		sock := filepath.Join(dir, "c.sock")
		ln, err := ctl.Listen(sock, mode)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != mode {
			t.Errorf("socket mode %v, want socket %v", fi.Mode(), mode)
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if di.Mode().Perm() != 0o700 {
			t.Errorf("socket directory mode %v, want 0700", di.Mode().Perm())
		}
		ln.Close()
	}
}
