//go:build windows && realwindows

package ctl_test

// Real Windows only (go test -tags realwindows): Wine 8 cannot accept a
// connection on a go-winio named pipe.

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
)

func TestRealWindowsPipeServesAndRefusesSecondDaemon(t *testing.T) {
	pipe := `\\.\pipe\circled-test-` + time.Now().Format("150405.000000")
	ln, err := ctl.Listen(pipe, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"version":"test"}`))
	})
	go func() { done <- ctl.Serve(ctx, ln, h) }()
	defer func() { cancel(); <-done }()

	c := ctl.NewClient(pipe)
	vctx, vcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer vcancel()
	if _, err := c.Version(vctx); err != nil {
		t.Fatalf("version over the pipe: %v", err)
	}
	if _, err := ctl.Listen(pipe, 0); !errors.Is(err, ctl.ErrSocketInUse) {
		t.Fatalf("second Listen: %v, want ErrSocketInUse", err)
	}
}

func TestRealWindowsUnreachablePipe(t *testing.T) {
	c := ctl.NewClient(`\\.\pipe\circled-nobody-here`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Version(ctx); !errors.Is(err, ctl.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}
