package rpc2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Handler.
type Options struct {
	// Logger gets one line per failed request; nil discards.
	Logger *slog.Logger
	// Now is the clock for the "now" field; nil means time.Now.
	Now func() time.Time
}

// Handler serves POST /RPC2 (supervisor's XML-RPC), and, when the backend
// is a LogFollower, GET /logtail/NAME[/stdout|/stderr] and GET
// /mainlogtail. Other paths are 404.
type Handler struct {
	b   Backend
	log *slog.Logger
	now func() time.Time

	methods map[string]*method

	// pending records what the last reloadConfig reported, so that the
	// calls `supervisorctl update` makes after it (stop, remove and add
	// of each group) acknowledge changes circle already applied instead
	// of acting again. See reloadConfig.
	mu      sync.Mutex
	pending map[string]string // group -> "added", "changed", "removed", "changed-stopped", "changed-removed"
}

// NewHandler returns the XML-RPC handler over b.
func NewHandler(b Backend, o Options) *Handler {
	h := &Handler{b: b, log: o.Logger, now: o.Now, pending: map[string]string{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.methods = h.table()
	return h
}

// Serves reports whether h serves path (for mounting next to another
// handler on one listener).
func Serves(path string) bool {
	return path == "/RPC2" || path == "/mainlogtail" || strings.HasPrefix(path, "/logtail/")
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/RPC2":
		h.serveRPC(w, r)
	case r.URL.Path == "/mainlogtail" || strings.HasPrefix(r.URL.Path, "/logtail/"):
		h.serveLogtail(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (h *Handler) serveRPC(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "XML-RPC takes POST", http.StatusMethodNotAllowed)
		return
	}
	body := http.MaxBytesReader(w, r.Body, MaxBody)
	c, err := decodeCall(body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, fmt.Sprintf("request body over %d bytes", MaxBody), http.StatusRequestEntityTooLarge)
			return
		}
		h.log.Warn("rpc2: bad XML-RPC request", "remote", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	v, f := h.call(r.Context(), c.Method, c.Params, true)
	var out []byte
	if f != nil {
		h.log.Debug("rpc2: fault", "method", c.Method, "code", f.Code, "fault", f.String)
		out = encodeFault(f)
	} else {
		out = encodeResponse(v)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

type method struct {
	name string
	// sig is the return type then the parameter types; optional trailing
	// parameters start at index optional (of params).
	sig      []string
	optional int
	help     string
	fn       func(ctx context.Context, args []any) (any, error)
}

// call runs a method; top is false inside system.multicall.
func (h *Handler) call(ctx context.Context, name string, params []any, top bool) (any, *Fault) {
	m, ok := h.methods[name]
	if !ok {
		return nil, newFault(FaultUnknownMethod, "")
	}
	if !top && name == "system.multicall" {
		return nil, newFault(FaultIncorrectParameters, "Recursive system.multicall forbidden")
	}
	nparams := len(m.sig) - 1
	if len(params) > nparams || len(params) < m.optional {
		return nil, newFault(FaultIncorrectParameters, fmt.Sprintf("%s takes %s, got %d", name, argCount(m.optional, nparams), len(params)))
	}
	v, err := m.fn(ctx, params)
	if err != nil {
		return nil, h.toFault(err)
	}
	return v, nil
}

func argCount(min, max int) string {
	switch {
	case min == max && max == 1:
		return "1 parameter"
	case min == max:
		return fmt.Sprintf("%d parameters", max)
	}
	return fmt.Sprintf("%d to %d parameters", min, max)
}

// toFault maps an error to a fault.
func (h *Handler) toFault(err error) *Fault {
	if f, ok := errors.AsType[*Fault](err); ok {
		return f
	}
	detail := err.Error()
	code := FaultFailed
	switch {
	case errors.Is(err, ErrNoSuchGroup):
		code = FaultBadName
	case errors.Is(err, ErrBadConfig):
		code = FaultCantReread
	case errors.Is(err, ErrNoLog):
		code = FaultNoFile
	case errors.Is(err, ErrShuttingDown):
		code, detail = FaultShutdownState, ""
	case errors.Is(err, ErrSpawn):
		code = FaultSpawnError
	case errors.Is(err, ErrNotRunning):
		code = FaultNotRunning
	case errors.Is(err, ErrBadSignal):
		code = FaultBadSignal
	case errors.Is(err, ErrNotExec):
		code = FaultNotExecutable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = FaultFailed
	default:
		h.log.Warn("rpc2: backend error", "err", err)
	}
	return newFault(code, detail)
}

// Parameter helpers: each returns an INCORRECT_PARAMETERS fault on a wrong
// type.

func argString(args []any, i int, def string) (string, error) {
	if i >= len(args) {
		return def, nil
	}
	switch v := args[i].(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	return "", newFault(FaultIncorrectParameters, fmt.Sprintf("parameter %d must be a string", i+1))
}

func argInt(args []any, i int) (int64, error) {
	if i < len(args) {
		if v, ok := args[i].(int64); ok {
			return v, nil
		}
	}
	return 0, newFault(FaultIncorrectParameters, fmt.Sprintf("parameter %d must be an int", i+1))
}

func argBool(args []any, i int, def bool) (bool, error) {
	if i >= len(args) {
		return def, nil
	}
	switch v := args[i].(type) {
	case bool:
		return v, nil
	case int64:
		return v != 0, nil
	}
	return false, newFault(FaultIncorrectParameters, fmt.Sprintf("parameter %d must be a boolean", i+1))
}

// argSignal accepts a signal name (HUP, SIGHUP, hup) or number, as int or
// string, and returns it as the backend takes it.
func argSignal(args []any, i int, def string) (string, error) {
	var raw string
	switch {
	case i >= len(args):
		raw = def
	default:
		switch v := args[i].(type) {
		case int64:
			raw = strconv.FormatInt(v, 10)
		case string:
			raw = v
		default:
			return "", newFault(FaultIncorrectParameters, fmt.Sprintf("parameter %d must be a signal name or number", i+1))
		}
	}
	sig, ok := normSignal(raw)
	if !ok {
		return "", newFault(FaultBadSignal, raw)
	}
	return sig, nil
}

// signalNames are the POSIX signal names accepted; the backend maps them
// to its platform's numbers.
var signalNames = []string{"ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "KILL",
	"PIPE", "PROF", "PWR", "QUIT", "SEGV", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG",
	"USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ"}

func normSignal(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(s); err == nil {
		return s, n >= 1 && n <= 64
	}
	s = strings.TrimPrefix(s, "SIG")
	return s, slices.Contains(signalNames, s)
}
