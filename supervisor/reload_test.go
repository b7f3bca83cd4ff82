//go:build unix

// Unix only: TestReloadReportsFailedWatchers runs real processes through
// the reaper (newSup, supervisor_unix_test.go).

package supervisor

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
	"github.com/circle-supervisor/circle/supervisor/config"
)

// Every [circled] setting is either applied by a reload or reported in
// need_restart: a new field of config.Daemon must have a key in config's
// table, which says whether it applies live.
func TestDaemonKeysCoverEveryField(t *testing.T) {
	fields := map[string]bool{}
	for _, k := range config.DaemonKeys() {
		fields[k.Field] = true
	}
	typ := reflect.TypeOf(config.Daemon{})
	for i := range typ.NumField() {
		if name := typ.Field(i).Name; !fields[name] {
			t.Errorf("config.Daemon.%s has no key in config.DaemonKeys(): a reload can neither apply nor report it", name)
		}
	}
}

func TestNeedRestart(t *testing.T) {
	old := config.Daemon{LogFormat: "text", WatchConfig: true, LogfileMaxBytes: 1, LogfileBackups: 1, LogLevel: "info", WarmupDelay: time.Second}
	cur := old
	cur.LogFormat, cur.WatchConfig, cur.LogfileMaxBytes, cur.LogfileBackups = "json", false, 2, 2
	cur.LogLevel, cur.WarmupDelay = "debug", 2*time.Second
	got := needRestart(old, cur)
	want := []string{"log_format", "logfile_max_bytes", "logfile_backups", "watch_config"}
	if !slices.Equal(got, want) {
		t.Fatalf("need_restart = %v, want %v", got, want)
	}
	if got := needRestart(old, old); len(got) != 0 {
		t.Fatalf("unchanged: need_restart = %v", got)
	}
}

// A reload reports, per watcher, a restart or a start that did not come up
// (a spawn error; fatal after it), applies everything else, and returns
// no error: the config did apply.
func TestReloadReportsFailedWatchers(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "[watcher:good]\ncmd = sleep 1000\n[watcher:bad]\ncmd = sleep 1001\n")
	s, _ := newSup(t, path)
	testhelper.Eventually(t, 20*time.Second, "all active", allActive(s))

	writeConfig(t, dir, "[watcher:good]\ncmd = sleep 1002\n"+
		"[watcher:bad]\ncmd = "+dir+"/missing-bad\nmax_retry = 0\n"+
		"[watcher:newbad]\ncmd = "+dir+"/missing-new\n"+
		"[watcher:newgood]\ncmd = sleep 1003\n")
	sum, err := s.ReloadConfig(context.Background())
	if err != nil {
		t.Fatalf("reload: %v (the config is valid: failures are in the summary)", err)
	}
	if got := slices.Sorted(maps.Keys(sum.Failed)); !slices.Equal(got, []string{"bad", "newbad"}) {
		t.Fatalf("failed = %v (%v), want [bad newbad]", got, sum.Failed)
	}
	if !strings.Contains(sum.Failed["bad"], "missing-bad") || !strings.Contains(sum.Failed["bad"], "fatal") {
		t.Errorf("bad's failure = %q, want the spawn error and that it is fatal", sum.Failed["bad"])
	}
	if !strings.Contains(sum.Failed["newbad"], "missing-new") {
		t.Errorf("newbad's failure = %q, want the spawn error", sum.Failed["newbad"])
	}
	if !strings.Contains(sum.String(), "failed=bad,newbad") {
		t.Errorf("summary %q does not name the failures", sum)
	}
	slices.Sort(sum.Restarted)
	slices.Sort(sum.Added)
	if !slices.Equal(sum.Restarted, []string{"bad", "good"}) || !slices.Equal(sum.Added, []string{"newbad", "newgood"}) {
		t.Errorf("restarted %v, added %v", sum.Restarted, sum.Added)
	}
	for _, n := range []string{"good", "newgood"} {
		if st := state(s, n); st != "active" {
			t.Errorf("%s is %s after the reload, want active", n, st)
		}
	}

	// A reload where everything applies reports no failure.
	writeConfig(t, dir, "[watcher:good]\ncmd = sleep 1002\n[watcher:bad]\ncmd = sleep 1004\n")
	sum, err = s.ReloadConfig(context.Background())
	if err != nil || sum.Failed != nil {
		t.Fatalf("clean reload: %v, failed %v", err, sum.Failed)
	}
}
