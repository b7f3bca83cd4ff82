package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/circle-supervisor/circle/rpc2"
	"github.com/circle-supervisor/circle/supervisor/config"
)

// supervisord's [inet_http_server]: rpc2 (and only rpc2: /RPC2, /logtail,
// /mainlogtail; never circle's JSON API) on a TCP listener, behind HTTP
// basic auth. The config requires a username and password unless the
// address is loopback; listenInetHTTP checks it again against the address
// actually bound.

// Bounds of the TCP listener. There is no write timeout and no whole
// request read timeout: GET /logtail streams for as long as the client
// follows (net/http cancels a request's context when a read deadline
// passes during the handler). A request body instead gets
// inetBodyTimeout to arrive, see boundBody.
const (
	inetReadHeaderTimeout = 10 * time.Second
	inetBodyTimeout       = 30 * time.Second
	inetIdleTimeout       = 60 * time.Second
	inetMaxHeaderBytes    = 64 << 10
	inetShutdownTimeout   = 500 * time.Millisecond
)

// listenInetHTTP opens h.Addr, refusing a listener without credentials
// beyond loopback (checked on the host written and on the address bound).
func listenInetHTTP(h config.InetHTTP) (net.Listener, error) {
	return checkedInetHTTP(h, func() (net.Listener, error) {
		ln, err := net.Listen("tcp", h.Addr)
		if err != nil {
			return nil, fmt.Errorf("inet_http_server: %w", err)
		}
		return ln, nil
	})
}

// checkedInetHTTP is the listener listen gives (bound now, or handed
// over by a live upgrade: the same checks either way, as the new binary
// may be the one that tightened them), refused without credentials
// beyond loopback.
func checkedInetHTTP(h config.InetHTTP, listen func() (net.Listener, error)) (net.Listener, error) {
	if (h.Username == "") != (h.Password == "") {
		return nil, fmt.Errorf("inet_http_server %s: username and password must be set together", h.Addr)
	}
	noAuth := h.Username == ""
	if noAuth && !loopbackHost(h.Addr) {
		return nil, fmt.Errorf("inet_http_server %s listens beyond loopback: a username and a password are required", h.Addr)
	}
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); noAuth && (!ok || !ta.IP.IsLoopback()) {
		ln.Close()
		return nil, fmt.Errorf("inet_http_server %s is bound to %s, beyond loopback: a username and a password are required", h.Addr, ln.Addr())
	}
	return ln, nil
}

// loopbackHost reports whether host:port names a loopback host.
func loopbackHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// inetHandler is rpc behind basic auth when h has credentials, with
// request bodies bounded in time.
func inetHandler(rpc http.Handler, h config.InetHTTP, log *slog.Logger) http.Handler {
	var out http.Handler = boundBody(rpc)
	if h.Username != "" {
		out = rpc2.BasicAuth(out, h.Username, h.Password, log)
	}
	return notFromBrowsers(out, h.Username == "")
}

// notFromBrowsers refuses what a web page can make a local browser send:
// any request carrying an Origin header (supervisorctl, xmlrpc.client and
// the other tools never send one), and, on a listener without
// credentials, a Host that is not a loopback name (DNS rebinding: a page
// on evil.example resolving to 127.0.0.1). Found in a security review.
func notFromBrowsers(h http.Handler, noAuth bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			http.Error(w, "cross-origin requests are refused", http.StatusForbidden)
			return
		}
		if noAuth {
			host := r.Host
			if _, _, err := net.SplitHostPort(host); err != nil {
				host = net.JoinHostPort(host, "0")
			}
			if !loopbackHost(host) {
				http.Error(w, "this listener has no credentials: only a loopback Host is served", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// boundBody reads a request's body (at most rpc2.MaxBody+1 bytes: rpc2
// answers 413 beyond MaxBody) within inetBodyTimeout, then lifts the
// read deadline before h runs, so a slow call is not cancelled.
func boundBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			rc.SetReadDeadline(time.Now().Add(inetBodyTimeout))
			body, err := io.ReadAll(io.LimitReader(r.Body, rpc2.MaxBody+1))
			rc.SetReadDeadline(time.Time{})
			if err != nil {
				w.Header().Set("Connection", "close")
				http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})
}

// serveInetHTTP serves h on ln until ctx is done, then shuts down (open
// /logtail streams are closed after inetShutdownTimeout).
func serveInetHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:                      h,
		ReadHeaderTimeout:            inetReadHeaderTimeout,
		IdleTimeout:                  inetIdleTimeout,
		MaxHeaderBytes:               inetMaxHeaderBytes,
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("inet_http_server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), inetShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("inet_http_server: %w", err)
	}
	return nil
}
