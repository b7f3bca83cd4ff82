package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// ErrSocketInUse is returned (wrapped) by Listen when a live daemon
// already answers on the socket.
var ErrSocketInUse = errors.New("another circled is running")

// Listen listens on the control socket at path with file mode mode.
//
// The socket's directory is created 0700 when missing. On Unix, that
// directory, every directory above it and the socket must belong to this
// process's user or root and not be writable by others (a sticky directory
// such as /tmp may be), or Listen fails with an error wrapping
// ErrUnsafeSocket that names the file, its owner and mode; the client
// checks the same before it connects (see sockperm_unix.go). An existing
// socket that a live daemon answers is an error wrapping ErrSocketInUse; a
// stale one (connection refused) is removed and replaced. Anything at path
// that is not a socket is an error and is never removed.
//
// On Unix the socket is a unix domain socket; closing the listener removes
// it. A zero mode means 0600. On Windows it is a named pipe (mode is
// ignored: a security descriptor grants SYSTEM, Administrators and the
// installing user), and a live daemon on it is ErrSocketInUse.
func Listen(path string, mode os.FileMode) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("ctl: listen: empty socket path")
	}
	if mode == 0 {
		mode = 0o600
	}
	ln, err := listen(path, mode)
	if err != nil {
		return nil, fmt.Errorf("ctl: listen on %s: %w", path, err)
	}
	return ln, nil
}

// socketInUse is the error of Listen when a daemon answers on path.
func socketInUse(path string) error {
	return fmt.Errorf("%w: a daemon already answers on %s", ErrSocketInUse, path)
}

// Timeouts of the control server. There is no write timeout: a stop or
// quit with wait legitimately runs for up to graceful_timeout.
type timeouts struct {
	readHeader time.Duration // silent or half-sent request headers
	read       time.Duration // whole request, body included
	idle       time.Duration // keep-alive connection between requests
	shutdown   time.Duration // graceful drain when ctx is cancelled
}

var defaultTimeouts = timeouts{
	readHeader: 5 * time.Second,
	read:       30 * time.Second,
	idle:       60 * time.Second,
	shutdown:   500 * time.Millisecond,
}

// maxHeaderBytes bounds request headers; ours are a few hundred bytes.
const maxHeaderBytes = 64 << 10

// Serve serves h on ln until ctx is cancelled, then shuts down gracefully
// (requests in flight get up to 500 ms to finish, then their connections are
// closed) and returns nil. It closes ln. Any other end of serving is an
// error.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return serve(ctx, ln, h, defaultTimeouts)
}

func serve(ctx context.Context, ln net.Listener, h http.Handler, t timeouts) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		// "OPTIONS *" goes to h (a JSON 404) instead of net/http's empty 200.
		DisableGeneralOptionsHandler: true,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ctl: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), t.shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ctl: serve: %w", err)
	}
	return nil
}
