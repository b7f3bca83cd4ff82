package ctl

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Test hooks into unexported code, for the external ctl_test package
// (which can import ctltest without a cycle).

var UnixDefault = unixDefault

// ServeWithTimeouts is Serve with short timeouts, so tests of half-open
// connections do not wait for the production ones.
func ServeWithTimeouts(ctx context.Context, ln net.Listener, h http.Handler, readHeader, read, idle time.Duration) error {
	return serve(ctx, ln, h, timeouts{readHeader: readHeader, read: read, idle: idle, shutdown: 5 * time.Second})
}
