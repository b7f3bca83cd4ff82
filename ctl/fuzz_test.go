package ctl_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
)

// FuzzHandler feeds the handler requests parsed from raw bytes (those
// http.ReadRequest accepts) over a fake backend. The handler must not
// panic, nor hide a panic of its own behind a 500 (only the fake's
// deliberate "panic" is expected), and every reply must follow
// docs/API.md: no redirect; JSON (one value and a newline, with a matching
// Content-Length; the error shape for 4xx/5xx), except a 200 text/plain
// stream from the logs route. The seed corpus is in
// testdata/fuzz/FuzzHandler. A follow of logs ends at once: the request's
// context is already cancelled.
//
//	go test -run='^$' -fuzz='^FuzzHandler$' -fuzztime=60s ./ctl
func FuzzHandler(f *testing.F) {
	f.Add([]byte("GET /v1/watchers HTTP/1.1\r\nHost: circled\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // the server would answer 400 before any handler
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req = req.WithContext(ctx)
		var panics panicLog
		h := ctl.NewHandler(ctltest.NewFake("web", "worker", "db:stopped"), slog.New(&panics))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if p := panics.unexpected(); p != "" {
			t.Fatalf("%s %q: the handler panicked: %s", req.Method, req.RequestURI, p)
		}
		checkReply(t, req, rec)
	})
}

// checkReply asserts rec is a reply docs/API.md allows for req.
func checkReply(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	what := req.Method + " " + strconv.Quote(req.RequestURI)
	body := rec.Body.Bytes()
	ct := rec.Header().Get("Content-Type")
	switch rec.Code {
	case 200, 400, 404, 405, 413, 422, 500, 503:
	default:
		t.Fatalf("%s: status %d; body %q", what, rec.Code, body)
	}
	if ct == "text/plain; charset=utf-8" {
		p := req.URL.EscapedPath()
		if rec.Code != 200 || (req.Method != "GET" && req.Method != "HEAD") ||
			!strings.HasPrefix(p, "/v1/watchers/") || !strings.HasSuffix(p, "/logs") {
			t.Fatalf("%s: %d text/plain reply outside the logs route; body %q", what, rec.Code, body)
		}
		return
	}
	if ct != "application/json" {
		t.Fatalf("%s: %d with Content-Type %q; body %q", what, rec.Code, ct, body)
	}
	if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Fatalf("%s: Content-Length %q for a body of %d bytes", what, cl, len(body))
	}
	v, ok := bytes.CutSuffix(body, []byte("\n"))
	if !ok || !json.Valid(v) || !bytes.HasPrefix(v, []byte("{")) {
		t.Fatalf("%s: %d body %q is not a JSON object and a newline", what, rec.Code, body)
	}
	if rec.Code == 200 {
		return
	}
	var er ctl.ErrorReply
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&er); err != nil || er.Error == "" {
		t.Fatalf("%s: %d body %q is not the error shape: %v", what, rec.Code, body, err)
	}
	switch er.Kind {
	case ctl.KindNoSuchWatcher, ctl.KindBadConfig, ctl.KindBadRequest, ctl.KindShuttingDown,
		ctl.KindNotFound, ctl.KindInternal:
	default:
		t.Fatalf("%s: %d unknown error kind %q", what, rec.Code, er.Kind)
	}
	if rec.Code == 405 && rec.Header().Get("Allow") == "" {
		t.Fatalf("%s: 405 without Allow", what)
	}
}

// fakePanic is the panic ctltest.Fake raises on purpose.
const fakePanic = "fake backend asked to panic"

// panicLog is a slog.Handler that records the panics the handler
// recovered from, other than the fake's own.
type panicLog struct {
	mu    sync.Mutex
	other []string
}

func (p *panicLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (p *panicLog) Handle(_ context.Context, r slog.Record) error {
	var msg, stack string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "panic":
			msg = a.Value.String()
		case "stack":
			stack = a.Value.String()
		}
		return true
	})
	if strings.Contains(r.Message, "panic") && msg != fakePanic {
		p.mu.Lock()
		p.other = append(p.other, msg+"\n"+stack)
		p.mu.Unlock()
	}
	return nil
}

func (p *panicLog) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicLog) WithGroup(string) slog.Handler      { return p }

func (p *panicLog) unexpected() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.other, "\n")
}
