package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An [eventlistener:x] starts with circled as with supervisord (autostart
// is its own, default true) and gets supervisord's variables; startretries
// becomes max_failed_starts (startretries + 1 failed starts) for the
// programs of a supervisord file and of its conversion; circled's own
// watchers have none unless they set it.
func TestSupervisordListenerStartsAndStartretries(t *testing.T) {
	dir := writeFiles(t, map[string]string{"supervisord.conf": `[unix_http_server]
file = /run/x.sock
[supervisord]
[program:web]
command = /bin/sleep 100
startretries = 7
[program:lazy]
command = /bin/sleep 100
[program:never]
command = /bin/sleep 100
startretries = 0
[eventlistener:crashmail]
command = crashmail -a
events = PROCESS_STATE_EXITED
[eventlistener:off]
command = memmon
events = TICK_60
autostart = false
`})
	c, err := Load(filepath.Join(dir, "supervisord.conf"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range c.Warnings {
		if strings.Contains(w.String(), "listener") {
			t.Errorf("warning about listeners: %s", w)
		}
	}
	cm := watcher(t, c, "crashmail")
	if !cm.Autostart || watcher(t, c, "off").Autostart {
		t.Errorf("autostart: crashmail %v, off %v", cm.Autostart, watcher(t, c, "off").Autostart)
	}
	for _, kv := range []string{"SUPERVISOR_ENABLED=1", "SUPERVISOR_PROCESS_NAME=crashmail", "SUPERVISOR_GROUP_NAME=crashmail", "SUPERVISOR_SERVER_URL=unix://" + c.Daemon.Socket} {
		if !containsString(cm.Env, kv) {
			t.Errorf("crashmail's environment has no %s: %v", kv, cm.Env)
		}
	}
	want := map[string]int{"web": 8, "lazy": 4, "never": 1, "crashmail": 4}
	for n, lim := range want {
		if got := watcher(t, c, n).MaxFailedStarts; got != lim {
			t.Errorf("%s: MaxFailedStarts %d, want %d", n, got, lim)
		}
	}

	// Converted, the same limits.
	_, files, err := ConvertSupervisord(filepath.Join(dir, "supervisord.conf"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, f := range files {
		p := filepath.Join(out, f.Name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c2, err := Load(filepath.Join(out, "circled.ini"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	for n, lim := range want {
		if got := watcher(t, c2, n).MaxFailedStarts; got != lim {
			t.Errorf("converted %s: MaxFailedStarts %d, want %d", n, got, lim)
		}
	}
	if !watcher(t, c2, "crashmail").Autostart {
		t.Error("converted crashmail does not autostart")
	}

	// circled's own watchers keep retrying with backoff.
	c3, err, _ := loadString(t, "[watcher:a]\ncmd = x\nmax_retry = 3\n\n[watcher:b]\ncmd = x\nmax_failed_starts = 2\n\n[env]\nSUPERVISOR_ENABLED = 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := watcher(t, c3, "a").MaxFailedStarts; got != 0 {
		t.Errorf("circled watcher: MaxFailedStarts %d, want 0 (whatever its environment)", got)
	}
	if got := watcher(t, c3, "b").MaxFailedStarts; got != 2 {
		t.Errorf("max_failed_starts = 2: MaxFailedStarts %d", got)
	}
	if _, err, _ := loadString(t, "[watcher:a]\ncmd = x\nmax_failed_starts = -1\n"); err == nil || !strings.Contains(err.Error(), "max_failed_starts") {
		t.Errorf("max_failed_starts = -1: %v", err)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
