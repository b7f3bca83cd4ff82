package supervisor

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// Every [circled] setting is either applied by a reload or reported in
// need_restart: a new field of config.Daemon must be listed in daemonKeys.
func TestDaemonKeysCoverEveryField(t *testing.T) {
	typ := reflect.TypeOf(config.Daemon{})
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		if !slices.ContainsFunc(daemonKeys, func(k struct {
			field, key string
			live       bool
		}) bool {
			return k.field == name
		}) {
			t.Errorf("config.Daemon.%s is not in daemonKeys: say whether a reload applies it", name)
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
