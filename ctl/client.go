package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Client talks to circled over its control socket. It implements Backend,
// so anything written against Backend can run remotely. Its zero value is
// not usable; call NewClient.
type Client struct {
	socket string
	hc     *http.Client
}

var _ Backend = (*Client)(nil)

// dialTimeout bounds connecting to the socket: a daemon that does not
// accept within it is as good as unreachable.
const dialTimeout = 5 * time.Second

// NewClient returns a client for the daemon on socket. It does not connect
// until the first call. On Unix, before each connection it checks that the
// socket and the directories on the way belong to this user or root and
// that nobody else can replace them; if not, the call fails with an error
// wrapping ErrUnsafeSocket and ErrUnreachable, without connecting.
func NewClient(socket string) *Client {
	return newClient(socket, func(ctx context.Context) (net.Conn, error) {
		d := net.Dialer{Timeout: dialTimeout}
		return dial(ctx, &d, socket)
	})
}

// newClient is a client whose connections come from dialFn; name (a
// socket path, ssh://host) is what errors name.
func newClient(name string, dialFn func(context.Context) (net.Conn, error)) *Client {
	c := &Client{socket: name}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := dialFn(ctx)
			if err != nil {
				return nil, &dialError{err}
			}
			return conn, nil
		},
		MaxIdleConns:          2,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 0, // stop --wait may take graceful_timeout
		DisableCompression:    true,
	}
	// No overall timeout: callers bound calls with their context.
	c.hc = &http.Client{Transport: tr}
	return c
}

// Close closes the client's idle connections (for a remote client, it
// ends their ssh processes). The client stays usable.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Dial connects to the control socket as the client does: within 5 s,
// after the same ownership checks on Unix. Its errors wrap ErrUnreachable
// and name the socket. circlectl dial-stdio uses it.
func Dial(ctx context.Context, socket string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := dial(ctx, &d, socket)
	if err != nil {
		return nil, fmt.Errorf("%w on %s: %w", ErrUnreachable, socket, dialCause(err))
	}
	return conn, nil
}

// dialCause is err without a *net.OpError's repetition of the path.
func dialCause(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// Socket is the socket path the client dials.
func (c *Client) Socket() string { return c.socket }

// dialError marks a failure to connect, as opposed to a failure after.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// do sends a request and decodes a 2xx JSON reply into out (if not nil).
// A non-2xx reply becomes an *Error; a failure to connect wraps
// ErrUnreachable and names the socket.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	resp, err := c.send(ctx, method, path, query, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Replies are small; the cap only guards against a wrong server.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read reply: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode reply: %w", method, path, err)
	}
	return nil
}

// getRetryFor bounds how long a GET cut before its reply is asked again
// (a live upgrade freezes the daemon for at most 10 s, then executes).
const getRetryFor = 15 * time.Second

// send sends a request and returns a 2xx reply with its body unread (the
// caller closes it). A non-2xx reply is read and returned as an *Error; a
// failure to connect wraps ErrUnreachable and names the socket.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := "http://circled" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	for began := time.Now(); err != nil && method == http.MethodGet && in == nil && connLost(err) && ctx.Err() == nil && time.Since(began) < getRetryFor; {
		// The connection was cut before the reply: the daemon may be
		// executing a new binary in place (a live upgrade, which keeps
		// its listening socket). A GET is asked again.
		first := err
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
		}
		if req, err = http.NewRequestWithContext(ctx, method, u, nil); err != nil {
			return nil, fmt.Errorf("build request: %w", err)
		}
		resp, err = c.hc.Do(req)
		var de *dialError
		if errors.As(err, &de) {
			// Nobody listens any more: the daemon went away, not
			// through an upgrade. The cut is the answer.
			err = first
			break
		}
	}
	if err != nil {
		var de *dialError
		var ce *CommandError
		switch {
		case errors.As(err, &de):
			return nil, fmt.Errorf("%w on %s: %w", ErrUnreachable, c.socket, dialCause(de.err))
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &ce):
			// ssh failed: the host, the remote circlectl or its daemon.
			return nil, fmt.Errorf("%w on %s: %w", ErrUnreachable, c.socket, ce)
		}
		return nil, fmt.Errorf("%s %s on %s: %w", method, path, c.socket, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %s: read reply: %w", method, path, resp.Status, err)
	}
	var er ErrorReply
	if json.Unmarshal(data, &er) == nil && er.Error != "" {
		return nil, &Error{Status: resp.StatusCode, Kind: er.Kind, Message: er.Error}
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return nil, &Error{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, msg)}
}

func nameQuery(names []string) url.Values {
	if len(names) == 0 {
		return nil
	}
	return url.Values{"name": names}
}

// watcherPath is /v1/watchers/NAME[/OP] with NAME escaped, "." and ".."
// included (as %2E): the daemon serves only canonical paths.
func watcherPath(name, op string) string {
	e := url.PathEscape(name)
	if e == "." || e == ".." {
		e = strings.ReplaceAll(e, ".", "%2E")
	}
	p := "/v1/watchers/" + e
	if op != "" {
		p += "/" + op
	}
	return p
}

// Status implements Backend: GET /v1/watchers.
//
// With StatusOptionsFrom(ctx).Descendants it sends ?descendants=1. A
// daemon older than that parameter refuses it: the status is then asked
// again without, and every Descendants is NotCounted.
func (c *Client) Status(ctx context.Context, names []string) (Status, error) {
	var st Status
	q := nameQuery(names)
	if StatusOptionsFrom(ctx).Descendants {
		q = url.Values{"name": names, "descendants": {"1"}}
	}
	err := c.do(ctx, http.MethodGet, "/v1/watchers", q, nil, &st)
	var ce *Error
	if q.Has("descendants") && errors.As(err, &ce) && ce.Kind == KindBadRequest &&
		strings.Contains(ce.Message, `unknown query parameter "descendants"`) {
		st = Status{}
		if err = c.do(ctx, http.MethodGet, "/v1/watchers", nameQuery(names), nil, &st); err == nil {
			for i := range st.Watchers {
				for j := range st.Watchers[i].Processes {
					st.Watchers[i].Processes[j].Descendants = NotCounted
				}
			}
		}
	}
	return st, err
}

// List implements Backend: GET /v1/list.
func (c *Client) List(ctx context.Context) ([]string, error) {
	var l WatcherList
	err := c.do(ctx, http.MethodGet, "/v1/list", nil, nil, &l)
	return l.Watchers, err
}

func (c *Client) action(ctx context.Context, op string, names []string, wait bool) (Result, error) {
	var res Result
	err := c.do(ctx, http.MethodPost, "/v1/"+op, nil, ActionRequest{Names: names, Wait: wait}, &res)
	return res, err
}

// Start implements Backend: POST /v1/start.
func (c *Client) Start(ctx context.Context, names []string, wait bool) (Result, error) {
	return c.action(ctx, "start", names, wait)
}

// Stop implements Backend: POST /v1/stop.
func (c *Client) Stop(ctx context.Context, names []string, wait bool) (Result, error) {
	return c.action(ctx, "stop", names, wait)
}

// Restart implements Backend: POST /v1/restart.
func (c *Client) Restart(ctx context.Context, names []string, wait bool) (Result, error) {
	return c.action(ctx, "restart", names, wait)
}

// Reload implements Backend: POST /v1/reload.
func (c *Client) Reload(ctx context.Context, names []string, wait bool) (Result, error) {
	return c.action(ctx, "reload", names, wait)
}

// ReloadConfig implements Backend: POST /v1/reloadconfig.
func (c *Client) ReloadConfig(ctx context.Context) (ReloadSummary, error) {
	var s ReloadSummary
	err := c.do(ctx, http.MethodPost, "/v1/reloadconfig", nil, struct{}{}, &s)
	return s, err
}

// Signal implements Backend: POST /v1/watchers/{name}/signal.
func (c *Client) Signal(ctx context.Context, name, sig string, pid int, children bool) (Result, error) {
	var res Result
	req := SignalRequest{Signal: sig, PID: pid, Children: children}
	err := c.do(ctx, http.MethodPost, watcherPath(name, "signal"), nil, req, &res)
	return res, err
}

// Incr implements Backend: POST /v1/watchers/{name}/incr, or .../decr
// with -n when n is negative.
func (c *Client) Incr(ctx context.Context, name string, n int) (Result, error) {
	op := "incr"
	if n < 0 {
		op, n = "decr", -n
	}
	var res Result
	err := c.do(ctx, http.MethodPost, watcherPath(name, op), nil, IncrRequest{N: n}, &res)
	return res, err
}

// NumProcesses implements Backend: GET /v1/watchers/{name}/numprocesses.
func (c *Client) NumProcesses(ctx context.Context, name string) (Result, error) {
	var res Result
	err := c.do(ctx, http.MethodGet, watcherPath(name, "numprocesses"), nil, nil, &res)
	return res, err
}

// Stats implements Backend: GET /v1/stats.
func (c *Client) Stats(ctx context.Context, names []string) (Stats, error) {
	var st Stats
	err := c.do(ctx, http.MethodGet, "/v1/stats", nameQuery(names), nil, &st)
	return st, err
}

// Quit implements Backend: POST /v1/quit. A connection the daemon drops
// after the request was sent counts as success: it was quitting.
func (c *Client) Quit(ctx context.Context, wait bool) error {
	err := c.do(ctx, http.MethodPost, "/v1/quit", nil, QuitRequest{Wait: wait}, nil)
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return nil
	}
	return err
}

// Version implements Backend: GET /v1/version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	err := c.do(ctx, http.MethodGet, "/v1/version", nil, nil, &v)
	return v, err
}

// Sockets implements Backend: GET /v1/sockets. A daemon older than the
// route answers 404 not_found: the error says it does not list sockets.
func (c *Client) Sockets(ctx context.Context) ([]Socket, error) {
	var l SocketList
	err := c.do(ctx, http.MethodGet, "/v1/sockets", nil, nil, &l)
	var ce *Error
	if errors.As(err, &ce) && ce.Status == http.StatusNotFound && ce.Kind == KindNotFound {
		return nil, fmt.Errorf("%w (circled is older than circlectl sockets)", err)
	}
	return l.Sockets, err
}

// Logs implements Backend: GET /v1/watchers/{name}/logs. It copies the
// stream to w as it arrives. It returns nil when the stream ends: the
// daemon finished it, ctx ended, or (with req.Follow) the daemon went
// away (the connection closed or was reset), so `logs -f` ends cleanly
// when circled stops. An unknown watcher is an error wrapping
// ErrNoSuchWatcher; a failed Write to w is returned as is.
func (c *Client) Logs(ctx context.Context, name string, req LogsRequest, w io.Writer) error {
	q := url.Values{"lines": {strconv.Itoa(req.Lines)}}
	if req.Follow {
		q.Set("follow", "1")
	}
	if req.Stream != "" {
		q.Set("stream", req.Stream)
	}
	path := watcherPath(name, "logs")
	resp, err := c.send(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		var ce *Error
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &ce), errors.Is(err, ErrUnreachable):
			return err
		case req.Follow && connLost(err):
			// The daemon took the request, had nothing to send yet and
			// went away (the headers of a follow wait for the first line
			// unless the daemon sends them at once).
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if rerr != nil {
			if rerr == io.EOF || ctx.Err() != nil || connLost(rerr) {
				return nil
			}
			return fmt.Errorf("GET %s: read stream: %w", path, rerr)
		}
	}
}

// connLost reports whether err is the daemon going away mid-reply: the
// connection closed early (EOF, a truncated chunked body) or was reset.
func connLost(err error) bool {
	var oe *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &oe) && oe.Op == "read") // WSAECONNRESET on Windows
}

// Reopen implements Backend: POST /v1/reopen.
func (c *Client) Reopen(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/reopen", nil, nil, nil)
}
