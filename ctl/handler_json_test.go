package ctl_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
)

// rawExchange sends raw on a new connection and reads one reply (for
// HEAD, without a body).
func rawExchange(t *testing.T, sock, raw string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(raw, " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%.40q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%.40q: read body: %v", raw, err)
	}
	return resp, body
}

// Every reply the handler makes is JSON with the API's error shape, even
// where net/http's ServeMux would redirect (a path that is not canonical)
// or answer in plain text (404, 405), and nothing reaches the backend.
func TestRepliesAreJSON(t *testing.T) {
	tests := []struct {
		name, raw string
		status    int
		kind      string
		want      string // substring of the error message
	}{
		{"double slash", "GET /v1//watchers HTTP/1.1\r\nHost: c\r\n\r\n", 404, ctl.KindNotFound,
			"no route GET /v1//watchers: the path is not canonical (/v1/watchers is)"},
		{"double slash keeps the query", "GET /v1//watchers?name=web HTTP/1.1\r\nHost: c\r\n\r\n", 404, ctl.KindNotFound,
			"(/v1/watchers?name=web is)"},
		{"dot segment", "GET /v1/watchers/./web HTTP/1.1\r\nHost: c\r\n\r\n", 404, ctl.KindNotFound,
			"(/v1/watchers/web is)"},
		{"dot-dot to quit", "POST /v1/watchers/web/../../quit HTTP/1.1\r\nHost: c\r\nContent-Length: 2\r\n\r\n{}", 404, ctl.KindNotFound,
			"(/v1/quit is)"},
		{"double slash to quit", "POST /v1//quit HTTP/1.1\r\nHost: c\r\nContent-Length: 0\r\n\r\n", 404, ctl.KindNotFound,
			"not canonical"},
		{"absolute form", "GET http://circled/v1//list HTTP/1.1\r\nHost: c\r\n\r\n", 404, ctl.KindNotFound,
			"(/v1/list is)"},
		{"trailing slash", "GET /v1/watchers/ HTTP/1.1\r\nHost: c\r\n\r\n", 404, ctl.KindNotFound, "no route"},
		{"trailing slash after a name", "GET /v1/watchers/web/ HTTP/1.1\r\nHost: c\r\n\r\n", 404, ctl.KindNotFound, "no route"},
		{"no route", "GET /v2/watchers HTTP/1.1\r\nHost: c\r\n\r\n", 404, ctl.KindNotFound, "no route"},
		{"wrong method", "DELETE /v1/watchers HTTP/1.1\r\nHost: c\r\n\r\n", 405, ctl.KindBadRequest, "not allowed"},
		{"options star", "OPTIONS * HTTP/1.1\r\nHost: c\r\n\r\n", 404, ctl.KindNotFound, "no route OPTIONS"},
		{"options", "OPTIONS /v1/watchers HTTP/1.1\r\nHost: c\r\n\r\n", 405, ctl.KindBadRequest, "not allowed"},
		{"connect", "CONNECT /v1/watchers HTTP/1.1\r\nHost: c\r\n\r\n", 405, ctl.KindBadRequest, "not allowed"},
		{"connect unclean", "CONNECT /v1//watchers HTTP/1.1\r\nHost: c\r\n\r\n", 404, ctl.KindNotFound, "no route"},
		{"head unclean", "HEAD /v1//watchers HTTP/1.1\r\nHost: c\r\n\r\n", 404, ctl.KindNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ctltest.NewFake("web")
			sock := startServer(t, f)
			resp, body := rawExchange(t, sock, tt.raw)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("Location %q: the reply redirects", loc)
			}
			if tt.status == 405 && resp.Header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
			if c := f.Calls(); len(c) != 0 {
				t.Errorf("the backend was called: %v", c)
			}
			if strings.HasPrefix(tt.raw, "HEAD ") {
				if len(body) != 0 {
					t.Errorf("HEAD reply with a body: %q", body)
				}
				return
			}
			var er ctl.ErrorReply
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&er); err != nil || !strings.HasSuffix(string(body), "}\n") {
				t.Fatalf("body %q is not one JSON error and a newline: %v", body, err)
			}
			if er.Kind != tt.kind || !strings.Contains(er.Error, tt.want) {
				t.Errorf("error %+v, want kind %s and a message with %q", er, tt.kind, tt.want)
			}
		})
	}
}

// Watcher names "." and ".." reach the daemon as names: the client escapes
// them, so the path stays canonical.
func TestClientDotNames(t *testing.T) {
	f := ctltest.NewFake("web")
	c := ctl.NewClient(startServer(t, f))
	for _, name := range []string{".", ".."} {
		_, err := c.NumProcesses(context.Background(), name)
		if !errors.Is(err, ctl.ErrNoSuchWatcher) {
			t.Errorf("NumProcesses(%q): %v, want no such watcher", name, err)
		}
		if got := f.LastCall(); got != "NumProcesses "+name {
			t.Errorf("NumProcesses(%q): backend got %q", name, got)
		}
	}
}
