package ctl

import (
	"errors"
	"net/http"
)

// Request bodies. Fields left out of a request keep the defaults the
// handler fills in before decoding (see docs/API.md); unknown fields are
// rejected.

// ActionRequest is the body of POST /v1/start, /v1/stop, /v1/restart and
// /v1/reload. No names means every watcher. Wait defaults to true.
type ActionRequest struct {
	Names []string `json:"names"`
	Wait  bool     `json:"wait"`
}

// SignalRequest is the body of POST /v1/watchers/{name}/signal.
type SignalRequest struct {
	Signal   string `json:"signal"`
	PID      int    `json:"pid,omitempty"`
	Children bool   `json:"children,omitempty"`
}

// IncrRequest is the body of POST /v1/watchers/{name}/incr and .../decr.
// N defaults to 1 and must be 1..MaxProcesses.
type IncrRequest struct {
	N int `json:"n"`
}

// MaxProcesses is the most processes a watcher may have, and so the
// largest n of incr and decr and the largest count incr may reach. It is
// the config's bound too (supervisor/config.MaxProcesses; a test in
// cmd/circlectl pins that they are equal: ctl imports no config).
const MaxProcesses = 100000

// QuitRequest is the body of POST /v1/quit. Wait defaults to true.
type QuitRequest struct {
	Wait bool `json:"wait"`
}

// DefaultLogLines is how many lines GET /v1/watchers/{name}/logs sends
// first when ?lines= is absent (and circlectl logs's default -n).
const DefaultLogLines = 10

// WatcherList is the reply of GET /v1/list.
type WatcherList struct {
	Watchers []string `json:"watchers"`
}

// SocketList is the reply of GET /v1/sockets.
type SocketList struct {
	Sockets []Socket `json:"sockets"`
}

// QuitReply is the reply of POST /v1/quit.
type QuitReply struct {
	Quitting bool `json:"quitting"`
}

// ReopenReply is the reply of POST /v1/reopen.
type ReopenReply struct {
	Reopened bool `json:"reopened"`
}

// ErrorReply is the body of every non-2xx reply.
type ErrorReply struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

// Error kinds of ErrorReply.
const (
	KindNoSuchWatcher = "no_such_watcher" // 404, ErrNoSuchWatcher
	KindBadConfig     = "bad_config"      // 422, ErrBadConfig
	KindBadRequest    = "bad_request"     // 400 (413 body too large, 405 wrong method), ErrBadRequest
	KindShuttingDown  = "shutting_down"   // 503, ErrShuttingDown
	KindNotFound      = "not_found"       // 404, no such route
	KindInternal      = "internal"        // 500, anything else
)

// MaxBodyBytes is the largest request body the handler reads.
const MaxBodyBytes = 1 << 20

// Error is a JSON error reply as the client sees it. Error() is the
// daemon's message verbatim; Unwrap returns the sentinel of its kind, so
// errors.Is(err, ErrNoSuchWatcher) works on what the client returns.
type Error struct {
	Status  int    // HTTP status
	Kind    string // one of the Kind constants, or "" when the reply was not JSON
	Message string
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return kindErr(e.Kind) }

func kindErr(kind string) error {
	switch kind {
	case KindNoSuchWatcher:
		return ErrNoSuchWatcher
	case KindBadConfig:
		return ErrBadConfig
	case KindBadRequest:
		return ErrBadRequest
	case KindShuttingDown:
		return ErrShuttingDown
	}
	return nil
}

// errKind maps an error from a Backend to its kind and HTTP status.
func errKind(err error) (kind string, status int) {
	switch {
	case errors.Is(err, ErrNoSuchWatcher):
		return KindNoSuchWatcher, http.StatusNotFound
	case errors.Is(err, ErrBadConfig):
		return KindBadConfig, http.StatusUnprocessableEntity
	case errors.Is(err, ErrBadRequest):
		return KindBadRequest, http.StatusBadRequest
	case errors.Is(err, ErrShuttingDown):
		return KindShuttingDown, http.StatusServiceUnavailable
	}
	return KindInternal, http.StatusInternalServerError
}
