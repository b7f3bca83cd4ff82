package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// NewHandler serves the /v1/ routes of docs/API.md over b. It never panics
// on input: bodies are capped at MaxBodyBytes, JSON is decoded strictly,
// and a panic in b is recovered, logged and answered with a 500.
func NewHandler(b Backend, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{b: b, log: log, mux: http.NewServeMux()}
	m := h.mux
	m.HandleFunc("GET /v1/watchers", h.status)
	m.HandleFunc("GET /v1/watchers/{name}", h.watcher)
	m.HandleFunc("GET /v1/list", h.list)
	m.HandleFunc("POST /v1/start", h.action(b.Start))
	m.HandleFunc("POST /v1/stop", h.action(b.Stop))
	m.HandleFunc("POST /v1/restart", h.action(b.Restart))
	m.HandleFunc("POST /v1/reload", h.action(b.Reload))
	m.HandleFunc("POST /v1/reloadconfig", h.reloadConfig)
	m.HandleFunc("POST /v1/watchers/{name}/signal", h.signal)
	m.HandleFunc("POST /v1/watchers/{name}/incr", h.incr(1))
	m.HandleFunc("POST /v1/watchers/{name}/decr", h.incr(-1))
	m.HandleFunc("GET /v1/watchers/{name}/numprocesses", h.numProcesses)
	m.HandleFunc("GET /v1/stats", h.stats)
	m.HandleFunc("POST /v1/quit", h.quit)
	m.HandleFunc("GET /v1/version", h.version)
	m.HandleFunc("GET /v1/sockets", h.sockets)
	m.HandleFunc("GET /v1/watchers/{name}/logs", h.logs)
	m.HandleFunc("POST /v1/reopen", h.reopen)
	m.HandleFunc("GET /v1/events", h.events)    // events.go
	m.HandleFunc("POST /v1/upgrade", h.upgrade) // upgrade.go
	return h
}

type handler struct {
	b   Backend
	log *slog.Logger
	mux *http.ServeMux
}

// apiError is an error the handler answers with a given status and kind.
type apiError struct {
	status int
	kind   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, KindBadRequest, fmt.Sprintf(format, args...)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("ctl: panic serving request", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !sw.wrote {
				h.writeError(sw, r, &apiError{http.StatusInternalServerError, KindInternal, "internal error"})
			}
		}
		h.log.Debug("ctl: request", "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "duration", time.Since(start))
	}()

	if r.ContentLength > MaxBodyBytes {
		h.writeError(sw, r, tooLarge())
		return
	}
	r.Body = http.MaxBytesReader(sw, r.Body, MaxBodyBytes)

	if _, pattern := h.mux.Handler(r); pattern == "" {
		// The mux would answer a plain-text 404 or 405: answer in JSON.
		cw := &captureWriter{header: make(http.Header)}
		h.mux.ServeHTTP(cw, r)
		if cw.status == http.StatusMethodNotAllowed {
			allow := cw.header.Get("Allow")
			sw.Header().Set("Allow", allow)
			h.writeError(sw, r, &apiError{http.StatusMethodNotAllowed, KindBadRequest,
				fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow)})
			return
		}
		h.writeError(sw, r, &apiError{http.StatusNotFound, KindNotFound,
			fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
		return
	}
	// The mux redirects (307, HTML body) a path that is not canonical
	// (/v1//watchers, /v1/watchers/./web) to its cleaned form: answer a
	// JSON 404 instead. A path is served only as it is written.
	h.mux.ServeHTTP(&noRedirect{ResponseWriter: sw, h: h, r: r}, r)
}

// noRedirect turns a redirect the mux writes into a JSON 404 not_found
// (whose message names the canonical path) and drops the HTML body.
type noRedirect struct {
	http.ResponseWriter
	h       *handler
	r       *http.Request
	dropped bool
}

func (w *noRedirect) WriteHeader(code int) {
	if code < 300 || code > 399 || w.dropped {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.dropped = true
	hd := w.Header()
	loc := hd.Get("Location")
	hd.Del("Location")
	msg := fmt.Sprintf("no route %s %s: the path is not canonical", w.r.Method, w.r.URL.EscapedPath())
	if loc != "" {
		msg += " (" + loc + " is)"
	}
	w.h.writeError(w.ResponseWriter, w.r, &apiError{http.StatusNotFound, KindNotFound, msg})
}

func (w *noRedirect) Write(b []byte) (int, error) {
	if w.dropped {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *noRedirect) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func tooLarge() error {
	return &apiError{http.StatusRequestEntityTooLarge, KindBadRequest,
		fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
}

// decode reads the JSON body into v, which holds the defaults: an empty
// body keeps them.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Exactly one JSON value: anything but whitespace after it is an error.
		var extra json.RawMessage
		if err = dec.Decode(&extra); err == io.EOF {
			return nil
		} else if err == nil {
			return badRequest("malformed JSON body: data after the JSON value")
		}
	} else if err == io.EOF {
		return nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge()
	}
	return badRequest("malformed JSON body: %v", err)
}

// queryNames returns the "name" query parameters and rejects any other key, so a
// typo (?names=) is an error rather than "every watcher".
func queryNames(r *http.Request) ([]string, error) {
	q, err := parseQuery(r)
	if err != nil {
		return nil, err
	}
	for k := range q {
		if k != "name" {
			return nil, badRequest("unknown query parameter %q (want name)", k)
		}
	}
	return q["name"], nil
}

func parseQuery(r *http.Request) (map[string][]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query: %v", err)
	}
	return q, nil
}

func noQuery(r *http.Request) error {
	if r.URL.RawQuery != "" {
		return badRequest("%s takes no query parameters", r.URL.Path)
	}
	return nil
}

// statusQuery parses the query of a status: ?name=GLOB (repeatable, when
// names is true) and ?descendants=BOOL (at most once).
func statusQuery(r *http.Request, names bool) ([]string, StatusOptions, error) {
	var opts StatusOptions
	q, err := parseQuery(r)
	if err != nil {
		return nil, opts, err
	}
	for k, v := range q {
		switch {
		case k == "name" && names:
		case k == "descendants":
			if len(v) != 1 {
				return nil, opts, badRequest("query parameter %q given %d times", k, len(v))
			}
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return nil, opts, badRequest("descendants must be 1 or 0 (true or false), got %q", v[0])
			}
			opts.Descendants = b
		case names:
			return nil, opts, badRequest("unknown query parameter %q (want name, descendants)", k)
		default:
			return nil, opts, badRequest("unknown query parameter %q (want descendants)", k)
		}
	}
	return q["name"], opts, nil
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	names, opts, err := statusQuery(r, true)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	st, err := h.b.Status(WithStatusOptions(r.Context(), opts), names)
	h.reply(w, r, normStatus(st), err)
}

func (h *handler) watcher(w http.ResponseWriter, r *http.Request) {
	_, opts, err := statusQuery(r, false)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	st, err := h.b.Status(WithStatusOptions(r.Context(), opts), []string{r.PathValue("name")})
	h.reply(w, r, normStatus(st), err)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	names, err := h.b.List(r.Context())
	h.reply(w, r, WatcherList{Watchers: nonNil(names)}, err)
}

func (h *handler) action(op func(ctx context.Context, names []string, wait bool) (Result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req := ActionRequest{Wait: true}
		if err := decode(r, &req); err != nil {
			h.writeError(w, r, err)
			return
		}
		for _, n := range req.Names {
			if n == "" {
				h.writeError(w, r, badRequest("empty watcher name"))
				return
			}
		}
		res, err := op(r.Context(), req.Names, req.Wait)
		h.reply(w, r, normResult(res), err)
	}
}

func (h *handler) reloadConfig(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	sum, err := h.b.ReloadConfig(r.Context())
	h.reply(w, r, normSummary(sum), err)
}

func (h *handler) signal(w http.ResponseWriter, r *http.Request) {
	var req SignalRequest
	if err := decode(r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	if req.Signal == "" {
		h.writeError(w, r, badRequest("missing signal"))
		return
	}
	if req.PID < 0 {
		h.writeError(w, r, badRequest("bad pid %d", req.PID))
		return
	}
	res, err := h.b.Signal(r.Context(), r.PathValue("name"), req.Signal, req.PID, req.Children)
	h.reply(w, r, normResult(res), err)
}

// incr serves incr (sign 1) and decr (sign -1). n must be 1..MaxProcesses;
// the sign comes from the route. An incr may not take the watcher beyond
// MaxProcesses (decr stops at 0).
func (h *handler) incr(sign int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req := IncrRequest{N: 1}
		if err := decode(r, &req); err != nil {
			h.writeError(w, r, err)
			return
		}
		if req.N < 1 || req.N > MaxProcesses {
			h.writeError(w, r, badRequest("n must be 1..%d (the maximum number of processes of a watcher), got %d", MaxProcesses, req.N))
			return
		}
		name := r.PathValue("name")
		if sign > 0 {
			// Checked against the count now: a concurrent incr may pass
			// too, but each adds at most MaxProcesses.
			cur, err := h.b.NumProcesses(r.Context(), name)
			if err != nil {
				h.writeError(w, r, err)
				return
			}
			if cur.NumProcesses+req.N > MaxProcesses {
				h.writeError(w, r, badRequest("%s has %d processes: %d more would exceed the maximum of %d processes per watcher",
					name, cur.NumProcesses, req.N, MaxProcesses))
				return
			}
		}
		res, err := h.b.Incr(r.Context(), name, sign*req.N)
		h.reply(w, r, normResult(res), err)
	}
}

func (h *handler) numProcesses(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	res, err := h.b.NumProcesses(r.Context(), r.PathValue("name"))
	h.reply(w, r, normResult(res), err)
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	names, err := queryNames(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	st, err := h.b.Stats(r.Context(), names)
	if st.Watchers == nil {
		st.Watchers = []WatcherStats{}
	}
	for i := range st.Watchers {
		if st.Watchers[i].Processes == nil {
			st.Watchers[i].Processes = []ProcessStats{}
		}
	}
	h.reply(w, r, st, err)
}

func (h *handler) quit(w http.ResponseWriter, r *http.Request) {
	req := QuitRequest{Wait: true}
	if err := decode(r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	err := h.b.Quit(r.Context(), req.Wait)
	h.reply(w, r, QuitReply{Quitting: true}, err)
}

func (h *handler) version(w http.ResponseWriter, r *http.Request) {
	v, err := h.b.Version(r.Context())
	h.reply(w, r, v, err)
}

func (h *handler) sockets(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	ss, err := h.b.Sockets(r.Context())
	h.reply(w, r, SocketList{Sockets: normSockets(ss)}, err)
}

func (h *handler) reopen(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	var req struct{}
	if err := decode(r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	err := h.b.Reopen(r.Context())
	h.reply(w, r, ReopenReply{Reopened: true}, err)
}

// logsQuery parses ?lines=N&follow=BOOL&stream=stdout|stderr, each at
// most once; anything else is a bad request.
func logsQuery(r *http.Request) (LogsRequest, error) {
	req := LogsRequest{Lines: DefaultLogLines}
	q, err := parseQuery(r)
	if err != nil {
		return req, err
	}
	for k, v := range q {
		if len(v) != 1 {
			return req, badRequest("query parameter %q given %d times", k, len(v))
		}
		switch val := v[0]; k {
		case "lines":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return req, badRequest("lines must be a number >= 0, got %q", val)
			}
			req.Lines = n
		case "follow":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return req, badRequest("follow must be 1 or 0 (true or false), got %q", val)
			}
			req.Follow = b
		case "stream":
			if val != "stdout" && val != "stderr" {
				return req, badRequest("stream must be stdout or stderr, got %q", val)
			}
			req.Stream = val
		default:
			return req, badRequest("unknown query parameter %q (want lines, follow, stream)", k)
		}
	}
	return req, nil
}

// logs streams a watcher's output as text/plain. The status is not known
// until the backend either writes (200, then the stream) or returns an
// error first (a JSON error reply), so the 200 is only committed by the
// first Write; see streamWriter.
func (h *handler) logs(w http.ResponseWriter, r *http.Request) {
	req, err := logsQuery(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if r.Method == http.MethodHead {
		req.Follow = false // a HEAD reply has no body to follow
	}
	// r.Context() ends when the client goes away. (The server's
	// ReadTimeout does not end it: net/http clears the read deadline once
	// the request is read; TestLogsFollowOutlivesReadTimeout checks.)
	sw := &streamWriter{w: w, rc: http.NewResponseController(w)}
	defer sw.close() // also on a backend panic: later Writes fail
	err = h.b.Logs(r.Context(), r.PathValue("name"), req, sw)
	if !sw.close() {
		// Nothing was written: the reply is still ours to choose.
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		sw.writeHeader()
		return
	}
	// After the 200, an error can only end the stream.
	if err != nil && r.Context().Err() == nil {
		h.log.Warn("ctl: logs stream ended by an error", "watcher", r.PathValue("name"), "err", err)
	}
}

// streamWriter is the io.Writer Backend.Logs writes to. Its first Write
// commits the reply (200, text/plain); a Write of no bytes commits it
// without data, so a backend can send the headers as soon as the name is
// resolved, before waiting for a line to follow. Every Write is flushed to
// the client. Writes after the handler returned fail. Safe for concurrent
// use.
type streamWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	closed  bool
	ctype   string // the reply's Content-Type; "" is text/plain
}

// errStreamClosed is what Write returns once the request is over.
var errStreamClosed = errors.New("ctl: logs stream closed")

func (s *streamWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errStreamClosed
	}
	if !s.started {
		s.writeHeader()
	}
	var n int
	if len(p) > 0 {
		var err error
		if n, err = s.w.Write(p); err != nil {
			return n, err
		}
	}
	if err := s.rc.Flush(); err != nil {
		return n, err
	}
	return n, nil
}

// writeHeader commits a 200 text/plain reply (whose body, without a
// Content-Length, is chunked).
func (s *streamWriter) writeHeader() {
	s.started = true
	h := s.w.Header()
	if s.ctype != "" {
		h.Set("Content-Type", s.ctype)
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	s.w.WriteHeader(http.StatusOK)
}

// close makes later Writes fail and reports whether the reply was
// committed.
func (s *streamWriter) close() (started bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.started
}

// reply writes v as a 200, or err as a JSON error.
func (h *handler) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		h.writeError(w, r, fmt.Errorf("encoding reply: %w", err))
		return
	}
	writeBody(w, http.StatusOK, b)
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var kind string
	var status int
	if errors.As(err, &ae) {
		kind, status = ae.kind, ae.status
	} else {
		kind, status = errKind(err)
	}
	if status >= 500 {
		h.log.Warn("ctl: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	b, _ := json.Marshal(ErrorReply{Error: err.Error(), Kind: kind})
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Replies never carry JSON null for a list: jq and scripts get [].

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func normStatus(st Status) Status {
	if st.Watchers == nil {
		st.Watchers = []WatcherStatus{}
	}
	for i := range st.Watchers {
		if st.Watchers[i].Processes == nil {
			st.Watchers[i].Processes = []ProcessStatus{}
		}
	}
	st.Sockets = normSockets(st.Sockets)
	return st
}

// normSockets is ss with [] for every nil list.
func normSockets(ss []Socket) []Socket {
	if ss == nil {
		return []Socket{}
	}
	for i := range ss {
		if ss[i].Watchers == nil {
			ss[i].Watchers = []SocketUse{}
		}
	}
	return ss
}

func normResult(r Result) Result {
	r.Watchers = nonNil(r.Watchers)
	return r
}

func normSummary(s ReloadSummary) ReloadSummary {
	s.Added = nonNil(s.Added)
	s.Removed = nonNil(s.Removed)
	s.Restarted = nonNil(s.Restarted)
	s.Scaled = nonNil(s.Scaled)
	s.Updated = nonNil(s.Updated)
	s.Unchanged = nonNil(s.Unchanged)
	if s.Error == "" {
		s.Error = s.FailedMessage()
	}
	return s
}

// statusWriter records whether and what status was written, for the
// access log and so a recovered panic does not write a second header.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter swallows the mux's own plain-text 404/405 reply.
type captureWriter struct {
	header http.Header
	status int
}

func (w *captureWriter) Header() http.Header { return w.header }
func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *captureWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}
