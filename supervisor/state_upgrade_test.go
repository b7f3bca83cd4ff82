package supervisor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/supervisor/logs"
)

// The handed-over config is the running one, exactly: JSON loses none
// of its fields (a live upgrade never re-reads the files).
func TestUpgradeStateConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ini := `[circled]
socket = ` + filepath.Join(dir, "c.sock") + `
loglevel = debug
graceful_timeout = 7

[watcher:web]
cmd = /bin/sh -c 'echo $(circle.wid) $GREETING'
numprocesses = 3
priority = 5
stop_signal = INT
stop_children = true
warmup_delay = 0.5
max_age = 3600
max_age_variance = 60
ready.tcp = 127.0.0.1:$(circle.wid)
ready.timeout = 5
health.http = http://127.0.0.1/health
health.retries = 2
backoff_max = 3
flapping.attempts = 4
respawn = true
stdout_stream.class = FileStream
stdout_stream.filename = ` + filepath.Join(dir, "web.$(circle.wid).log") + `
stdout_stream.max_bytes = 1000000
stdout_stream.backup_count = 3
stderr_stream.class = null
rlimit_nofile = 4096
umask = 027
depends_on = db:ready

[watcher:db]
cmd = sleep 1000
singleton = true
critical = true

[env:web]
GREETING = hello
`
	path := filepath.Join(dir, "c.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{Environ: []string{"PATH=/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	st := UpgradeState{Format: UpgradeFormat, Config: cfg, Snap: snapshot(cfg.Files)}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back UpgradeState
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Config, cfg) {
		t.Errorf("config changed by the hand-over:\nbefore %+v\nafter  %+v", cfg, back.Config)
		for i := range cfg.Watchers {
			if !reflect.DeepEqual(back.Config.Watchers[i], cfg.Watchers[i]) {
				t.Errorf("watcher %s:\nbefore %+v\nafter  %+v", cfg.Watchers[i].Name, *cfg.Watchers[i], *back.Config.Watchers[i])
			}
		}
	}
	if !sameSnap(back.Snap, st.Snap) {
		t.Errorf("snapshot changed")
	}
}

// A ring's lines survive Export and RestoreRing, at the same offsets.
func TestUpgradeRingRoundTrip(t *testing.T) {
	r := logs.NewRing()
	k := &logs.Sink{Name: "w", Ring: r, Drops: logs.NewDrops()}
	w := k.Open(1, 42)
	for range 20000 { // wraps the ring several times
		w.Write([]byte("some line of output\n"))
	}
	w.Write([]byte("last\n"))
	want, _ := r.Tail(100, -1)
	back := logs.RestoreRing(r.Export())
	got, _ := back.Tail(100, -1)
	if string(got) != string(want) || len(got) == 0 {
		t.Errorf("restored ring tail:\n%q\nwant\n%q", got, want)
	}
}
