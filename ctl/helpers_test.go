package ctl_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type serverOpts struct {
	readHeader, read, idle time.Duration
}

// startServer serves b on a fresh socket until the test ends and returns
// the socket path. Cleanup asserts Serve returns nil.
func startServer(t *testing.T, b ctl.Backend, opts ...serverOpts) string {
	t.Helper()
	o := serverOpts{readHeader: 5 * time.Second, read: 30 * time.Second, idle: 60 * time.Second}
	if len(opts) > 0 {
		o = opts[0]
	}
	sock := filepath.Join(testhelper.ShortDir(t), "c.sock")
	ln, err := ctl.Listen(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := ctl.NewHandler(b, testLogger(t))
	go func() { done <- ctl.ServeWithTimeouts(ctx, ln, h, o.readHeader, o.read, o.idle) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return sock
}

// rawClient is a plain HTTP client on the socket, to test the wire
// format independently of ctl.Client.
func rawClient(sock string) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		},
		Timeout: 10 * time.Second,
	}
}
