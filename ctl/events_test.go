package ctl_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
)

// GET /v1/events answers NDJSON as events come; bad queries are 400s.
func TestEventsRoute(t *testing.T) {
	f := ctltest.NewFake("web")
	sock := startServer(t, f)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return ctl.Dial(ctx, sock)
	}}}
	for q, want := range map[string]string{
		"since=yesterday": "RFC 3339",
		"watcher=[":       "bad watcher glob",
		"names=web":       "unknown query parameter",
		"since=2025-01-01T00:00:00Z&since=2025-01-01T00:00:00Z": "given 2 times",
	} {
		resp, err := hc.Get("http://circled/v1/events?" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), want) {
			t.Errorf("?%s: %d %s, want 400 with %q", q, resp.StatusCode, b, want)
		}
	}
	since := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Emit(ctl.Event{Time: since.Add(-time.Hour), Type: "spawn", Watcher: "web", PID: 1})
	f.Emit(ctl.Event{Time: since.Add(time.Hour), Type: "spawn", Watcher: "web", PID: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://circled/v1/events?watcher=we*&since="+since.Format(time.RFC3339), nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	read := func() ctl.Event {
		l, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var ev ctl.Event
		if err := json.Unmarshal(l, &ev); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		return ev
	}
	if ev := read(); ev.PID != 2 {
		t.Fatalf("replay from since: %+v, want pid 2 only", ev)
	}
	f.Emit(ctl.Event{Time: time.Now(), Type: "exit", Watcher: "web", PID: 2, Code: new(int)})
	if ev := read(); ev.Type != "exit" || ev.Code == nil || *ev.Code != 0 {
		t.Fatalf("live: %+v, want exit with code 0 (a zero code is sent)", ev)
	}
	if got := f.LastCall(); got != `Events ["we*"] 2025-01-01T00:00:00Z` {
		t.Fatalf("call = %q", got)
	}
}
