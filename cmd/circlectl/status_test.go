package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
)

// autostartFake is a ctltest.Fake whose status marks the named watchers
// autostart = true, as circled's does for watchers configured so.
type autostartFake struct {
	*ctltest.Fake
	autostart map[string]bool
}

func (f autostartFake) Status(ctx context.Context, names []string) (ctl.Status, error) {
	st, err := f.Fake.Status(ctx, names)
	for i := range st.Watchers {
		st.Watchers[i].Autostart = f.autostart[st.Watchers[i].Name]
	}
	return st, err
}

// TestStatusQuiet: exit 0 when every autostart watcher is active; a
// watcher with autostart = false may be stopped, but none may be failing.
func TestStatusQuiet(t *testing.T) {
	tests := []struct {
		watchers  []string // ctltest.NewFake's "name:state"
		autostart []string
		args      []string
		code      int
	}{
		{[]string{"web", "worker"}, []string{"web", "worker"}, nil, 0},
		{[]string{"web", "oneshot:stopped"}, []string{"web"}, nil, 0},
		{[]string{"web", "oneshot:stopped"}, []string{"web", "oneshot"}, nil, 1},
		{[]string{"web:starting"}, []string{"web"}, nil, 1},
		{[]string{"web:stopping"}, []string{"web"}, nil, 1},
		{[]string{"web", "manual:fatal"}, []string{"web"}, nil, 1},
		{[]string{"web", "manual:backoff"}, []string{"web"}, nil, 1},
		{[]string{"web", "manual:flapping"}, []string{"web"}, nil, 1},
		{[]string{"web:backoff"}, []string{"web"}, nil, 1},
		{[]string{"web:starting", "manual:starting"}, nil, nil, 0},
		{nil, nil, nil, 0},
		// Only the watchers named count.
		{[]string{"web", "db:stopped"}, []string{"web", "db"}, []string{"web"}, 0},
		{[]string{"web", "db:stopped"}, []string{"web", "db"}, []string{"d*"}, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.watchers, tt.autostart, tt.args), func(t *testing.T) {
			f := autostartFake{ctltest.NewFake(tt.watchers...), map[string]bool{}}
			for _, n := range tt.autostart {
				f.autostart[n] = true
			}
			sock := startDaemon(t, f)
			args := append([]string{"--socket", sock, "status", "--quiet"}, tt.args...)
			code, stdout, stderr := circlectl(args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if stdout != "" || stderr != "" {
				t.Errorf("--quiet printed stdout %q, stderr %q", stdout, stderr)
			}
		})
	}
}
