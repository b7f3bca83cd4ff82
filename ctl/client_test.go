package ctl_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

func TestClientRoundTrip(t *testing.T) {
	f := ctltest.NewFake("web", "worker", "db:fatal")
	c := ctl.NewClient(startServer(t, f))
	ctx := context.Background()

	st, err := c.Status(ctx, []string{"w*"})
	if err != nil || len(st.Watchers) != 2 || st.Watchers[0].Processes[0].PID != 1000 ||
		!st.Watchers[0].Processes[0].StartedAt.Equal(ctltest.Started) {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	names, err := c.List(ctx)
	if err != nil || !reflect.DeepEqual(names, []string{"web", "worker", "db"}) {
		t.Errorf("List = %v, %v", names, err)
	}
	steps := []struct {
		call func() (ctl.Result, error)
		want string
	}{
		{func() (ctl.Result, error) { return c.Start(ctx, nil, true) }, "Start [] true"},
		{func() (ctl.Result, error) { return c.Stop(ctx, []string{"web"}, false) }, "Stop [web] false"},
		{func() (ctl.Result, error) { return c.Restart(ctx, []string{"web", "db"}, true) }, "Restart [web db] true"},
		{func() (ctl.Result, error) { return c.Reload(ctx, []string{"web"}, true) }, "Reload [web] true"},
		{func() (ctl.Result, error) { return c.Signal(ctx, "web", "USR1", 7, true) }, "Signal web USR1 7 true"},
		{func() (ctl.Result, error) { return c.Incr(ctx, "web", 2) }, "Incr web 2"},
		{func() (ctl.Result, error) { return c.Incr(ctx, "web", -1) }, "Incr web -1"},
		{func() (ctl.Result, error) { return c.NumProcesses(ctx, "web") }, "NumProcesses web"},
	}
	for _, s := range steps {
		if _, err := s.call(); err != nil {
			t.Errorf("%s: %v", s.want, err)
		}
		if got := f.LastCall(); got != s.want {
			t.Errorf("backend got %q, want %q", got, s.want)
		}
	}
	if res, _ := c.NumProcesses(ctx, "web"); res.NumProcesses != 2 {
		t.Errorf("numprocesses after +2 -1 = %d, want 2", res.NumProcesses)
	}
	if s, err := c.Stats(ctx, []string{"web"}); err != nil || s.Watchers[0].Processes[0].RSS != 3<<20 {
		t.Errorf("Stats = %+v, %v", s, err)
	}
	if v, err := c.Version(ctx); err != nil || v.Version != "1.2.3" || v.PID != 42 {
		t.Errorf("Version = %+v, %v", v, err)
	}
	if _, err := c.ReloadConfig(ctx); err != nil {
		t.Errorf("ReloadConfig: %v", err)
	}
	if err := c.Quit(ctx, false); err != nil || f.LastCall() != "Quit false" {
		t.Errorf("Quit: %v, call %q", err, f.LastCall())
	}
}

func TestClientErrors(t *testing.T) {
	f := ctltest.NewFake("web")
	f.ReloadErr = errors.New("x.ini:3: cmd: required")
	c := ctl.NewClient(startServer(t, f))
	ctx := context.Background()

	_, err := c.Restart(ctx, []string{"nope"}, true)
	var ce *ctl.Error
	if !errors.Is(err, ctl.ErrNoSuchWatcher) || !errors.As(err, &ce) || ce.Status != 404 ||
		err.Error() != "no such watcher: nope" {
		t.Errorf("unknown watcher: %v (%#v)", err, err)
	}
	if _, err := c.Signal(ctx, "web", "BOGUS", 0, false); !errors.Is(err, ctl.ErrBadRequest) {
		t.Errorf("bad signal: %v", err)
	}
	_, err = c.ReloadConfig(ctx)
	if !errors.As(err, &ce) || ce.Kind != ctl.KindInternal || err.Error() != f.ReloadErr.Error() {
		t.Errorf("internal error: %#v", err)
	}
	for _, sentinel := range []error{ctl.ErrNoSuchWatcher, ctl.ErrBadConfig, ctl.ErrBadRequest, ctl.ErrShuttingDown, ctl.ErrUnreachable} {
		if errors.Is(err, sentinel) {
			t.Errorf("internal error matches %v", sentinel)
		}
	}
}

func TestClientUnreachable(t *testing.T) {
	sock := filepath.Join(testhelper.ShortDir(t), "none.sock")
	_, err := ctl.NewClient(sock).Status(context.Background(), nil)
	if !errors.Is(err, ctl.ErrUnreachable) || !strings.Contains(err.Error(), sock) {
		t.Errorf("err = %v, want ErrUnreachable naming %s", err, sock)
	}
}

// Status sends ?descendants=1 when its ctx asks; a daemon older than the
// parameter refuses it, and the status comes without the counts.
func TestClientStatusDescendants(t *testing.T) {
	f := ctltest.NewFake("web", "worker")
	c := ctl.NewClient(startServer(t, f))
	ctx := ctl.WithStatusOptions(context.Background(), ctl.StatusOptions{Descendants: true})
	if st, err := c.Status(ctx, []string{"web"}); err != nil || len(st.Watchers) != 1 || st.Watchers[0].Processes[0].Descendants != 0 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if f.LastCall() != "Status [web] descendants" {
		t.Errorf("call %q, want descendants asked for", f.LastCall())
	}

	// An older daemon: GET /v1/watchers takes only ?name=.
	old := ctltest.NewFake("web", "worker")
	h := ctl.NewHandler(old, nil)
	sock := filepath.Join(testhelper.ShortDir(t), "old.sock")
	ln, err := ctl.Listen(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ctl.Serve(sctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Has("descendants") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"unknown query parameter \"descendants\" (want name)","kind":"bad_request"}`+"\n")
				return
			}
			h.ServeHTTP(w, r)
		}))
	}()
	defer func() { cancel(); <-done }()
	st, err := ctl.NewClient(sock).Status(ctx, []string{"w*"})
	if err != nil || len(st.Watchers) != 2 {
		t.Fatalf("Status from an older daemon = %+v, %v", st, err)
	}
	for _, w := range st.Watchers {
		if d := w.Processes[0].Descendants; d != ctl.NotCounted {
			t.Errorf("%s: descendants %d from an older daemon, want %d", w.Name, d, ctl.NotCounted)
		}
	}
	if old.LastCall() != "Status [w*]" {
		t.Errorf("older daemon's call %q", old.LastCall())
	}
}
