package ctl_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
)

// bigBackend is the ctltest fake with a status document of w watchers
// sharing n processes in all.
type bigBackend struct {
	*ctltest.Fake
	st ctl.Status
}

func newBigBackend(watchers, procs int) *bigBackend {
	b := &bigBackend{Fake: ctltest.NewFake()}
	per := procs / watchers
	pid := 10000
	for i := 0; i < watchers; i++ {
		ws := ctl.WatcherStatus{Name: fmt.Sprintf("app%04d", i), State: "active", NumProcesses: per, Autostart: true}
		for wid := 1; wid <= per; wid++ {
			ws.Processes = append(ws.Processes, ctl.ProcessStatus{WID: wid, PID: pid, State: "running",
				StartedAt: ctltest.Started.Add(time.Duration(pid) * time.Millisecond), Restarts: wid % 3,
				LastExit: ctl.Exit{Signal: "KILL"}})
			pid++
		}
		b.st.Watchers = append(b.st.Watchers, ws)
	}
	return b
}

// Status copies the document, as the real backend builds a fresh one.
func (b *bigBackend) Status(context.Context, []string) (ctl.Status, error) {
	st := ctl.Status{Watchers: make([]ctl.WatcherStatus, len(b.st.Watchers))}
	for i, w := range b.st.Watchers {
		w.Processes = append([]ctl.ProcessStatus(nil), w.Processes...)
		st.Watchers[i] = w
	}
	return st, nil
}

// benchHandler: GET /v1/watchers through the handler, backend → JSON,
// no socket.
func benchHandler(b *testing.B, watchers, procs int) {
	h := ctl.NewHandler(newBigBackend(watchers, procs), slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.ReportAllocs()
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/watchers", nil))
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/doc")
}

func BenchmarkStatusHandler1w2000p(b *testing.B) { benchHandler(b, 1, 2000) }
func BenchmarkStatusHandler2000w1p(b *testing.B) { benchHandler(b, 2000, 2000) }
func BenchmarkStatusHandler1w200p(b *testing.B)  { benchHandler(b, 1, 200) }

// benchRoundTrip: ctl.Client.Status over a real unix socket (one client,
// keep-alive connection), JSON encode in the handler and decode in the client.
func benchRoundTrip(b *testing.B, watchers, procs int) {
	dir, err := os.MkdirTemp("", "ctlb")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "c.sock")
	var ln net.Listener
	ln, err = ctl.Listen(sock, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := ctl.NewHandler(newBigBackend(watchers, procs), slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { done <- ctl.ServeWithTimeouts(ctx, ln, h, 5*time.Second, 30*time.Second, 60*time.Second) }()
	defer func() { cancel(); <-done }()
	c := ctl.NewClient(sock)
	b.ReportAllocs()
	for b.Loop() {
		st, err := c.Status(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, w := range st.Watchers {
			n += len(w.Processes)
		}
		if n != procs {
			b.Fatalf("got %d processes", n)
		}
	}
}

func BenchmarkStatusRoundTrip1w2000p(b *testing.B) { benchRoundTrip(b, 1, 2000) }
func BenchmarkStatusRoundTrip1w200p(b *testing.B)  { benchRoundTrip(b, 1, 200) }
