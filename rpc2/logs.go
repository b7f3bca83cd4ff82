package rpc2

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// MaxRead is the most bytes one log read or tail returns.
const MaxRead = 1 << 20

// readFile is supervisor's readFile over a Backend log.
func (h *Handler) readFile(ctx context.Context, ref LogRef, offset, length int64) (any, error) {
	var off int64
	var n int
	switch {
	case offset < 0:
		if length != 0 {
			return nil, newFault(FaultBadArguments, "")
		}
		off, n = -1, MaxRead
		if offset > -MaxRead {
			n = int(-offset)
		}
	case length < 0:
		return nil, newFault(FaultBadArguments, "")
	default:
		off, n = offset, MaxRead
		if length != 0 && length < MaxRead {
			n = int(length)
		}
	}
	c, err := h.b.ReadLog(ctx, ref, off, n)
	if err != nil {
		return nil, err
	}
	return c.Data, nil
}

// tailFile is supervisor's tailFile: up to length bytes from offset; when
// the log has grown beyond offset+length, overflow is set and the window
// moves to the log's end. The returned offset is always the log's size.
func (h *Handler) tailFile(ctx context.Context, ref LogRef, offset, length int64) ([]any, error) {
	length = min(length, MaxRead)
	c, err := h.b.ReadLog(ctx, ref, -1, int(max(length, 0)))
	if err != nil {
		return nil, err
	}
	sz := c.Size
	overflow := false
	if sz-length > offset { // sz > offset+length, without overflowing
		overflow = true
		offset = sz - 1
	}
	if offset > sz-length { // offset+length > sz
		if offset > sz-1 {
			length = 0
		}
		offset = sz - length
	}
	offset, length = max(offset, 0), max(length, 0)
	held := int64(len(c.Data))
	from, to := max(offset, c.From)-c.From, min(offset+length, c.From+held)-c.From
	var data []byte
	if from < to && from >= 0 && to <= held {
		data = c.Data[from:to]
	}
	return []any{data, sz, overflow}, nil
}

func (h *Handler) readLog(ctx context.Context, args []any) (any, error) {
	off, err := argInt(args, 0)
	if err != nil {
		return nil, err
	}
	n, err := argInt(args, 1)
	if err != nil {
		return nil, err
	}
	return h.readFile(ctx, LogRef{}, off, n)
}

func (h *Handler) tailLog(ctx context.Context, args []any) (any, error) {
	off, err := argInt(args, 0)
	if err != nil {
		return nil, err
	}
	n, err := argInt(args, 1)
	if err != nil {
		return nil, err
	}
	r, err := h.tailFile(ctx, LogRef{}, off, n)
	if errors.Is(err, ErrNoLog) {
		return []any{"", 0, false}, nil
	}
	return r, err
}

func (h *Handler) clearLog(ctx context.Context, _ []any) (any, error) {
	return true, h.b.ClearLog(ctx, LogRef{})
}

func (h *Handler) processLogArgs(ctx context.Context, args []any, stream string) (LogRef, int64, int64, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return LogRef{}, 0, 0, err
	}
	off, err := argInt(args, 1)
	if err != nil {
		return LogRef{}, 0, 0, err
	}
	n, err := argInt(args, 2)
	if err != nil {
		return LogRef{}, 0, 0, err
	}
	_, p, err := h.resolve(ctx, name)
	if err != nil {
		return LogRef{}, 0, 0, err
	}
	if p == nil {
		return LogRef{}, 0, 0, newFault(FaultBadName, name)
	}
	return LogRef{Group: p.group, WID: p.p.WID, Stream: strings.ToLower(stream)}, off, n, nil
}

func (h *Handler) readProcessLog(ctx context.Context, args []any, stream string) (any, error) {
	ref, off, n, err := h.processLogArgs(ctx, args, stream)
	if err != nil {
		return nil, err
	}
	return h.readFile(ctx, ref, off, n)
}

func (h *Handler) tailProcessLog(ctx context.Context, args []any, stream string) (any, error) {
	ref, off, n, err := h.processLogArgs(ctx, args, stream)
	if err != nil {
		return nil, err
	}
	r, err := h.tailFile(ctx, ref, off, n)
	if errors.Is(err, ErrNoLog) {
		return []any{"", 0, false}, nil
	}
	return r, err
}

// followTail is how much of the log GET /logtail sends before following
// (supervisor sends the last 1024 bytes).
const followTail = 1024

// serveLogtail serves GET /logtail/NAME[/stdout|/stderr] and GET
// /mainlogtail: the log's last 1024 bytes, then what is written to it,
// until the client goes away.
func (h *Handler) serveLogtail(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "logtail takes GET", http.StatusMethodNotAllowed)
		return
	}
	f, ok := h.b.(LogFollower)
	if !ok {
		http.Error(w, "following a log is not supported", http.StatusNotFound)
		return
	}
	ref := LogRef{}
	if r.URL.Path != "/mainlogtail" {
		name, channel, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/logtail/"), "/")
		if channel == "" {
			channel = "stdout"
		}
		if channel != "stdout" && channel != "stderr" {
			http.Error(w, "no such channel "+channel, http.StatusNotFound)
			return
		}
		_, p, err := h.resolve(r.Context(), name)
		if err != nil || p == nil {
			http.Error(w, "no such process "+name, http.StatusNotFound)
			return
		}
		ref = LogRef{Group: p.group, WID: p.p.WID, Stream: channel}
	}
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	err := f.FollowLog(r.Context(), ref, followTail, fw)
	if err != nil && !fw.wrote {
		if errors.Is(err, ErrNoLog) {
			http.Error(w, "no log file", http.StatusNotFound)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err != nil {
		h.log.Warn("rpc2: logtail", "path", r.URL.Path, "err", err)
	}
}

type flushWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, f.rc.Flush()
}
