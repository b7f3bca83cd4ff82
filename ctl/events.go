package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"time"
)

// Event is one line of GET /v1/events (NDJSON). Fields that do not apply
// to a type are left out.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // spawn, exit, ready, unhealthy, state, flapping, fatal, restart, reload, log_dropped, lost
	Watcher string    `json:"watcher,omitempty"`
	WID     int       `json:"wid,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Code    *int      `json:"code,omitempty"`   // exit: the exit code
	Signal  string    `json:"signal,omitempty"` // exit: the signal that ended it
	State   string    `json:"state,omitempty"`  // state, flapping, fatal: the watcher's new state
	Reason  string    `json:"reason,omitempty"` // restart: crash, flapping, health, manual, reload; reload: the error
	// Count is, for lost, how many events this subscriber missed; for
	// log_dropped, the bytes of output that could not be written.
	Count   int64          `json:"count,omitempty"`
	Summary *ReloadSummary `json:"summary,omitempty"` // reload: what it did
}

// EventsRequest selects what Backend.Events sends.
type EventsRequest struct {
	// Watchers are names or globs; none means every watcher. Events not
	// about one watcher (reload, lost) are always sent.
	Watchers []string
	// Since, when not zero, first replays the kept events (the last 1000)
	// from that time on.
	Since time.Time
}

// EventsBackend is implemented by a Backend that streams events.
type EventsBackend interface {
	// Events writes events as NDJSON (one JSON object and "\n" per
	// Write) to w until ctx ends or the daemon stops (both return nil).
	// A Write of no bytes sends the reply's headers without data. A
	// consumer that does not keep up is sent a lost event with the number
	// of events it missed; it never slows the daemon.
	Events(ctx context.Context, req EventsRequest, w io.Writer) error
}

func eventsQuery(r *http.Request) (EventsRequest, error) {
	var req EventsRequest
	q, err := parseQuery(r)
	if err != nil {
		return req, err
	}
	for k, v := range q {
		switch k {
		case "watcher":
			for _, g := range v {
				if _, err := path.Match(g, ""); err != nil {
					return req, badRequest("bad watcher glob %q: %v", g, err)
				}
			}
			req.Watchers = v
		case "since":
			if len(v) != 1 {
				return req, badRequest("query parameter %q given %d times", k, len(v))
			}
			t, err := time.Parse(time.RFC3339Nano, v[0])
			if err != nil {
				return req, badRequest("since must be an RFC 3339 time (2006-01-02T15:04:05Z), got %q", v[0])
			}
			req.Since = t
		default:
			return req, badRequest("unknown query parameter %q (want watcher, since)", k)
		}
	}
	return req, nil
}

// events streams the daemon's events as NDJSON (see streamWriter).
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	req, err := eventsQuery(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	eb, ok := h.b.(EventsBackend)
	if !ok {
		h.writeError(w, r, &apiError{http.StatusNotFound, KindNotFound, "this daemon has no event stream"})
		return
	}
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), ctype: "application/x-ndjson"}
	defer sw.close()
	err = eb.Events(r.Context(), req, sw)
	if !sw.close() {
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		sw.writeHeader()
		return
	}
	if err != nil && r.Context().Err() == nil {
		h.log.Warn("ctl: event stream ended by an error", "err", err)
	}
}

// Events follows GET /v1/events: fn gets each event and its JSON line
// (without the newline) until ctx ends (nil), the daemon closes the
// stream (nil) or fn returns an error (returned).
func (c *Client) Events(ctx context.Context, req EventsRequest, fn func(ev Event, line []byte) error) error {
	q := url.Values{}
	for _, w := range req.Watchers {
		q.Add("watcher", w)
	}
	if !req.Since.IsZero() {
		q.Set("since", req.Since.UTC().Format(time.RFC3339Nano))
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/events", q, nil)
	if err != nil {
		var ce *Error
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &ce), errors.Is(err, ErrUnreachable):
			return err
		case connLost(err):
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("GET /v1/events: bad line %q: %w", line, err)
		}
		if err := fn(ev, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil && !connLost(err) {
		return fmt.Errorf("GET /v1/events: read stream: %w", err)
	}
	return nil
}
