package ctl_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// hasCall reports whether the fake recorded call.
func hasCall(f *ctltest.Fake, call string) bool {
	return slices.Contains(f.Calls(), call)
}

// follow runs c.Logs with Follow in the background, waits until the fake
// follows, and returns the output and the call's result.
func follow(t *testing.T, ctx context.Context, c *ctl.Client, f *ctltest.Fake, name string, lines int) (*testhelper.SyncBuffer, <-chan error) {
	t.Helper()
	out := &testhelper.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- c.Logs(ctx, name, ctl.LogsRequest{Lines: lines, Follow: true}, out) }()
	testhelper.Eventually(t, 20*time.Second, "the backend to follow", func() bool { return f.Followers() == 1 })
	return out, done
}

func wait(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

func TestLogsHandler(t *testing.T) {
	last := func(n int) string { // the last n of web's canned lines
		var all []string
		for i := 1; i <= ctltest.CannedStdout; i++ {
			all = append(all, fmt.Sprintf("web.1 | line %d\n", i))
		}
		for i := 1; i <= ctltest.CannedStderr; i++ {
			all = append(all, fmt.Sprintf("web.1 | oops %d\n", i))
		}
		return strings.Join(all[len(all)-n:], "")
	}
	tests := []struct {
		name   string
		query  string
		status int
		call   string // the backend's first Logs call; "" = none
		want   string // the whole body for a 200, a substring of the error otherwise
	}{
		{"default 10 lines", "", 200, "Logs web 10 false ", last(10)},
		{"lines", "?lines=3", 200, "Logs web 3 false ", last(3)},
		{"more than there are", "?lines=1000", 200, "Logs web 1000 false ", last(14)},
		{"zero lines", "?lines=0", 200, "Logs web 0 false ", ""},
		{"stdout", "?lines=2&stream=stdout", 200, "Logs web 2 false stdout", "web.1 | line 11\nweb.1 | line 12\n"},
		{"stderr", "?stream=stderr", 200, "Logs web 10 false stderr", "web.1 | oops 1\nweb.1 | oops 2\n"},
		{"follow=0", "?lines=1&follow=0", 200, "Logs web 1 false ", last(1)},
		{"negative lines", "?lines=-1", 400, "", "lines"},
		{"lines not a number", "?lines=ten", 400, "", "lines"},
		{"empty lines", "?lines=", 400, "", "lines"},
		{"bad follow", "?follow=maybe", 400, "", "follow"},
		{"bad stream", "?stream=both", 400, "", "stream"},
		{"unknown parameter", "?line=3", 400, "", `"line"`},
		{"repeated parameter", "?lines=1&lines=2", 400, "", "2 times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ctltest.NewFake("web", "worker")
			resp, err := rawClient(startServer(t, f)).Get("http://circled/v1/watchers/web/logs" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 200 {
				var er ctl.ErrorReply
				if json.Unmarshal(body, &er) != nil || er.Kind != ctl.KindBadRequest ||
					!strings.Contains(er.Error, tt.want) || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("error reply %s (%s), want bad_request about %s", body, resp.Header.Get("Content-Type"), tt.want)
				}
				if slices.ContainsFunc(f.Calls(), func(c string) bool { return strings.HasPrefix(c, "Logs") }) {
					t.Errorf("the backend was called: %v", f.Calls())
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if string(body) != tt.want {
				t.Errorf("body\n%s\nwant\n%s", body, tt.want)
			}
			if got := f.Calls()[0]; got != tt.call {
				t.Errorf("backend call %q, want %q", got, tt.call)
			}
		})
	}
}

// An error before the first byte is a JSON error reply with its status.
func TestLogsUnknownWatcher(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := startServer(t, f)
	for _, q := range []string{"", "?follow=1"} {
		resp, err := rawClient(sock).Get("http://circled/v1/watchers/nope/logs" + q)
		if err != nil {
			t.Fatal(err)
		}
		var er ctl.ErrorReply
		err = json.NewDecoder(resp.Body).Decode(&er)
		resp.Body.Close()
		if resp.StatusCode != 404 || err != nil || er.Kind != ctl.KindNoSuchWatcher ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %+v %v", q, resp.StatusCode, er, err)
		}
	}
	err := ctl.NewClient(sock).Logs(context.Background(), "nope", ctl.LogsRequest{Lines: 10, Follow: true}, io.Discard)
	var ce *ctl.Error
	if !errors.Is(err, ctl.ErrNoSuchWatcher) || !errors.As(err, &ce) || ce.Status != 404 {
		t.Errorf("client: %v", err)
	}
}

// A backend panic before the first byte is a 500 JSON reply.
func TestLogsPanic(t *testing.T) {
	f := ctltest.NewFake("web")
	resp, err := rawClient(startServer(t, f)).Get("http://circled/v1/watchers/panic/logs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestClientLogsLastLines(t *testing.T) {
	f := ctltest.NewFake("web")
	c := ctl.NewClient(startServer(t, f))
	var out bytes.Buffer
	err := c.Logs(context.Background(), "web", ctl.LogsRequest{Lines: 2, Stream: "stdout"}, &out)
	if err != nil || out.String() != "web.1 | line 11\nweb.1 | line 12\n" {
		t.Errorf("Logs = %v, %q", err, out.String())
	}
	if got := f.LastCall(); got != "Logs web 2 false stdout" {
		t.Errorf("backend call %q", got)
	}
	err = c.Logs(context.Background(), "web", ctl.LogsRequest{Lines: -1}, &out)
	if !errors.Is(err, ctl.ErrBadRequest) {
		t.Errorf("negative lines: %v, want ErrBadRequest", err)
	}
}

// A line logged after the follow started reaches the client on its own:
// nothing is logged after it until it has arrived, so a reply that is not
// flushed line by line never delivers it (the 5 s deadline is for that bug,
// not a latency target). Removing the watcher ends the stream cleanly.
func TestClientLogsFollow(t *testing.T) {
	f := ctltest.NewFake("web", "worker")
	c := ctl.NewClient(startServer(t, f))
	out, done := follow(t, context.Background(), c, f, "web", 1)
	testhelper.Eventually(t, 20*time.Second, "the last line", func() bool { return out.String() == "web.1 | oops 2\n" })

	for i := range 3 {
		line := fmt.Sprintf("web.1 | new %d\n", i)
		f.Log("worker", "stdout", "not followed")
		f.Log("web", "stdout", fmt.Sprintf("new %d", i))
		testhelper.Eventually(t, 20*time.Second, "the new line, with nothing logged after it", func() bool { return strings.HasSuffix(out.String(), line) })
	}
	f.Log("web", "stderr", "last words")
	f.RemoveWatcher("web")
	if err := wait(t, done, "Logs after RemoveWatcher"); err != nil {
		t.Errorf("Logs after the watcher was removed: %v, want nil", err)
	}
	want := "web.1 | oops 2\nweb.1 | new 0\nweb.1 | new 1\nweb.1 | new 2\nweb.1 | last words\n"
	if out.String() != want {
		t.Errorf("output\n%s\nwant\n%s", out.String(), want)
	}
}

// A follow with nothing to send yet has its 200 (the fake commits it at
// once) and ends cleanly when the watcher is removed.
func TestLogsFollowEmpty(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := startServer(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://circled/v1/watchers/web/logs?lines=0&follow=1", nil)
	resp, err := rawClient(sock).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("status %d, %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
		t.Errorf("Transfer-Encoding %v, want chunked", te)
	}
	f.Log("web", "stdout", "hello")
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != "web.1 | hello\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	f.RemoveWatcher("web")
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Errorf("end of stream: %q, %v; want a clean end", rest, err)
	}
}

// Cancelling the client's ctx returns nil and cancels the backend's ctx.
func TestClientLogsCancel(t *testing.T) {
	f := ctltest.NewFake("web")
	c := ctl.NewClient(startServer(t, f))
	ctx, cancel := context.WithCancel(context.Background())
	_, done := follow(t, ctx, c, f, "web", 0)
	cancel()
	if err := wait(t, done, "Logs after cancel"); err != nil {
		t.Errorf("Logs after cancel: %v, want nil", err)
	}
	testhelper.Eventually(t, 20*time.Second, "the backend's ctx to end", func() bool {
		return hasCall(f, "Logs web end: context canceled") && f.Followers() == 0
	})
}

// A client that goes away (closes its connection) cancels the backend's
// ctx.
func TestLogsClientDisconnect(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := startServer(t, f)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /v1/watchers/web/logs?follow=1 HTTP/1.1\r\nHost: circled\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	testhelper.Eventually(t, 20*time.Second, "the backend to follow", func() bool { return f.Followers() == 1 })
	conn.Close()
	testhelper.Eventually(t, 20*time.Second, "the backend's ctx to end", func() bool {
		return hasCall(f, "Logs web end: context canceled") && f.Followers() == 0
	})
}

// The server's ReadTimeout does not cut a follow.
func TestLogsFollowOutlivesReadTimeout(t *testing.T) {
	f := ctltest.NewFake("web")
	const read = 100 * time.Millisecond
	// ReadHeaderTimeout is generous: the follow's own request must reach
	// the server (a loaded machine can take more than 100 ms between the
	// connect and the headers); ReadTimeout, 100 ms from the first read,
	// still runs out while the follow is open.
	c := ctl.NewClient(startServer(t, f, serverOpts{readHeader: 10 * time.Second, read: read, idle: time.Minute}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, done := follow(t, ctx, c, f, "web", 0)
	time.Sleep(3 * read) // the deadline must pass
	f.Log("web", "stdout", "still here")
	testhelper.Eventually(t, 20*time.Second, "a line after the read timeout", func() bool { return out.String() == "web.1 | still here\n" })
	select {
	case err := <-done:
		t.Fatalf("the follow ended: %v", err)
	default:
	}
	if hasCall(f, "Logs web end: context canceled") {
		t.Errorf("the backend's ctx was cancelled")
	}
	cancel()
	wait(t, done, "Logs after cancel")
}

// A follow ends cleanly (nil) when the daemon shuts down, with what was
// sent before.
func TestClientLogsServerShutdown(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := filepath.Join(testhelper.ShortDir(t), "c.sock")
	ln, err := ctl.Listen(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(sctx, ln, ctl.NewHandler(f, testLogger(t))) }()
	defer stop()

	out, done := follow(t, context.Background(), ctl.NewClient(sock), f, "web", 1)
	f.Log("web", "stdout", "bye")
	testhelper.Eventually(t, 20*time.Second, "the line", func() bool { return strings.HasSuffix(out.String(), "web.1 | bye\n") })
	stop()
	if err := wait(t, done, "Logs after the server stopped"); err != nil {
		t.Errorf("Logs after the server stopped: %v, want nil", err)
	}
	if err := wait(t, served, "Serve"); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if out.String() != "web.1 | oops 2\nweb.1 | bye\n" {
		t.Errorf("output %q", out.String())
	}
}

func TestReopen(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := startServer(t, f)
	resp, err := rawClient(sock).Post("http://circled/v1/reopen", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"reopened":true}`+"\n" || f.LastCall() != "Reopen" {
		t.Errorf("reopen: %d %s, call %q", resp.StatusCode, body, f.LastCall())
	}
	resp, err = rawClient(sock).Get("http://circled/v1/reopen")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET /v1/reopen: %d, want 405", resp.StatusCode)
	}

	c := ctl.NewClient(sock)
	if err := c.Reopen(context.Background()); err != nil {
		t.Errorf("client Reopen: %v", err)
	}
	f2 := ctltest.NewFake("web")
	f2.ReopenErr = errors.New("reopen /var/log/web.log: permission denied")
	err = ctl.NewClient(startServer(t, f2)).Reopen(context.Background())
	var ce *ctl.Error
	if !errors.As(err, &ce) || ce.Status != 500 || err.Error() != f2.ReopenErr.Error() {
		t.Errorf("client Reopen with an error: %v", err)
	}
}

// silentLogs follows without ever writing, so the 200 is never sent.
type silentLogs struct {
	*ctltest.Fake
	started chan struct{}
}

func (s silentLogs) Logs(ctx context.Context, _ string, _ ctl.LogsRequest, _ io.Writer) error {
	close(s.started)
	<-ctx.Done()
	return nil
}

// A follow the daemon never answered (no line yet, headers not sent) also
// ends cleanly when the daemon stops; a plain request does not.
func TestClientLogsServerShutdownBeforeHeaders(t *testing.T) {
	b := silentLogs{ctltest.NewFake("web"), make(chan struct{})}
	sock := filepath.Join(testhelper.ShortDir(t), "c.sock")
	ln, err := ctl.Listen(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(sctx, ln, ctl.NewHandler(b, testLogger(t))) }()
	defer stop()

	done := make(chan error, 1)
	go func() {
		done <- ctl.NewClient(sock).Logs(context.Background(), "web", ctl.LogsRequest{Follow: true}, io.Discard)
	}()
	select {
	case <-b.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the backend was not called")
	}
	stop()
	if err := wait(t, done, "Logs after the server stopped"); err != nil {
		t.Errorf("Logs after the server stopped: %v, want nil", err)
	}
	if err := wait(t, served, "Serve"); err != nil {
		t.Errorf("Serve: %v", err)
	}
}
