package config

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeFiles creates files (relative path -> content) in a temp dir and
// returns the dir.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeUsers is the user database of the tests: tarek is in wheel and www
// besides his own group; uid 4242 has no passwd entry.
var fakeUsers = map[string]*User{
	"root":  {Name: "root", UID: 0, GID: 0, Home: "/root", Shell: "/bin/bash"},
	"tarek": {Name: "tarek", UID: 1001, GID: 1001, Home: "/home/tarek", Shell: "/bin/zsh", Groups: []int{33, 10}},
	"www":   {Name: "www", UID: 33, GID: 33, Home: "/var/www", Shell: "/usr/sbin/nologin"},
}

var fakeGroups = map[string]int{"root": 0, "wheel": 10, "www": 33, "tarek": 1001, "ssl-cert": 111}

func testOptions(env ...string) Options {
	return Options{
		Environ: env,
		LookupUser: func(n string) (*User, error) {
			if u, ok := fakeUsers[n]; ok {
				c := *u
				return &c, nil
			}
			return nil, user.UnknownUserError(n)
		},
		LookupUserID: func(id int) (*User, error) {
			for _, u := range fakeUsers {
				if u.UID == id {
					c := *u
					return &c, nil
				}
			}
			return nil, user.UnknownUserIdError(id)
		},
		LookupGroup: func(n string) (int, error) {
			if id, ok := fakeGroups[n]; ok {
				return id, nil
			}
			return 0, user.UnknownGroupError(n)
		},
		LookupGroupID: func(id int) (string, error) {
			for n, g := range fakeGroups {
				if g == id {
					return n, nil
				}
			}
			return "", user.UnknownGroupIdError(strconv.Itoa(id))
		},
	}
}

func loadString(t *testing.T, ini string, env ...string) (*Config, error, string) {
	t.Helper()
	dir := writeFiles(t, map[string]string{"circled.ini": ini})
	c, err := Load(filepath.Join(dir, "circled.ini"), testOptions(env...))
	return c, err, dir
}

func mustLoad(t *testing.T, ini string, env ...string) (*Config, string) {
	t.Helper()
	c, err, dir := loadString(t, ini, env...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c, dir
}

func watcher(t *testing.T, c *Config, name string) *Watcher {
	t.Helper()
	for _, w := range c.Watchers {
		if w.Name == name {
			return w
		}
	}
	t.Fatalf("no watcher %q", name)
	return nil
}

func envOf(w *Watcher) map[string]string {
	return envMap(w.Env)
}

// The configuration from the brief, verbatim.
const briefConfig = `[watcher:framework]
cmd=$(CIRCLE.ENV.ANT_PYTHON) -m framework
numprocess=1
stop_children=True

[env:framework]
ANT_MODULE_ROOT=$ANT_ROOT_DIR
`

func TestBriefConfig(t *testing.T) {
	c, _ := mustLoad(t, briefConfig, "ANT_PYTHON=/usr/bin/python3", "ANT_ROOT_DIR=/opt/ant", "PATH=/usr/bin")
	if len(c.Watchers) != 1 {
		t.Fatalf("watchers = %d", len(c.Watchers))
	}
	w := c.Watchers[0]
	if want := []string{"/usr/bin/python3", "-m", "framework"}; !slices.Equal(w.Argv, want) {
		t.Errorf("Argv = %q, want %q", w.Argv, want)
	}
	if want := []string{"ANT_MODULE_ROOT=/opt/ant", "CIRCLED_WATCHER=framework"}; !slices.Equal(w.Env, want) {
		t.Errorf("Env = %q, want %q", w.Env, want)
	}
	if w.NumProcesses != 1 || !w.StopChildren || w.StopSignal != "TERM" || w.GracefulTimeout != 30*time.Second {
		t.Errorf("unexpected watcher %+v", w)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
}

func TestDefaults(t *testing.T) {
	c, dir := mustLoad(t, "[watcher:a]\ncmd = sleep 10\n")
	want := &Watcher{
		Name: "a", File: filepath.Join(dir, "circled.ini"), Line: 1,
		Argv: []string{"sleep", "10"}, Env: []string{"CIRCLED_WATCHER=a"},
		Umask: -1, StopSignal: "TERM", StopChildren: true, GracefulTimeout: 30 * time.Second,
		NumProcesses: 1, Respawn: true, MaxRetry: 5, Autostart: true,
		MinUptime: time.Second, BackoffMax: 10 * time.Second,
		Flapping: Flapping{Attempts: 5, Window: 10 * time.Second, RetryIn: 30 * time.Second, MaxRetry: 5},
		Stdout:   Stream{Class: "stdout", FileMode: 0o640}, Stderr: Stream{Class: "stdout", FileMode: 0o640},
		RespawnMode:    "always",
		Ready:          ReadyChecks{Timeout: time.Minute, Interval: 200 * time.Millisecond},
		Health:         HealthChecks{Interval: 10 * time.Second, Timeout: 5 * time.Second, Retries: 3},
		MaxAgeVariance: 30 * time.Second, MaxMemoryInterval: 5 * time.Second, Hooks: Hooks{Timeout: 30 * time.Second},
	}
	if got := c.Watchers[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	wantD := Daemon{SocketMode: 0o600, LogLevel: "info", LogFormat: "text", LogfileMode: 0o640, Umask: -1, GracefulTimeout: 30 * time.Second, WatchConfig: true}
	if c.Daemon != wantD {
		t.Errorf("daemon %+v, want %+v", c.Daemon, wantD)
	}
	if c.File != filepath.Join(dir, "circled.ini") || !slices.Equal(c.Files, []string{c.File}) || !slices.Equal(c.WatchDirs, []string{dir}) {
		t.Errorf("File %q Files %q WatchDirs %q", c.File, c.Files, c.WatchDirs)
	}
}

func TestEveryKey(t *testing.T) {
	c, dir := mustLoad(t, `[circled]
socket = run/circled.sock
socket_mode = 0660
pidfile = /run/circled.pid
loglevel = DEBUG
log_format = json
logfile = log/circled.log
logfile_mode = 0604
umask = 022
graceful_timeout = 12
warmup_delay = 0.5
watch_config = off

[watcher:all]
cmd = /bin/prog "a b" 'c d' e\ f
args = --x=1 $(circle.wid)
numprocesses = 3
working_dir = work
shell = false
uid = tarek
gid = 10
umask = 0027
copy_env = no
copy_path = yes
stop_signal = sigint
stop_children = FALSE
graceful_timeout = 2.5
respawn = off
max_retry = -1
autostart = 0
priority = -7
warmup_delay = 250ms
singleton = false
critical = YES
min_uptime = 3s
backoff_max = 1m
rlimit_nofile = 1024
rlimit_core = unlimited
rlimit_as = infinity
flapping.attempts = 3
flapping.window = 20
flapping.retry_in = 1m
flapping.max_retry = 2
stdout_stream.class = FileStream
stdout_stream.filename = logs/out-$(circle.wid).log
stdout_stream.max_bytes = 1MB
stdout_stream.backup_count = 4
stdout_stream.max_age = 7
stdout_stream.compress = true
stdout_stream.time_format = %Y
stdout_stream.file_mode = 644
stderr_stream.class = TimedRotatingFileStream
stderr_stream.filename = /var/log/err.log
stderr_stream.rotate_when = midnight
stderr_stream.rotate_interval = 2
stderr_stream.max_bytes = 10KB
redirect_stderr = false
`, "PATH=/bin:/usr/bin", "HOME=/root")
	d := c.Daemon
	wantD := Daemon{
		Socket: filepath.Join(dir, "run/circled.sock"), SocketMode: 0o660, Pidfile: "/run/circled.pid",
		LogLevel: "debug", LogFormat: "json", Logfile: filepath.Join(dir, "log/circled.log"), LogfileMode: 0o604, Umask: 0o22,
		GracefulTimeout: 12 * time.Second, WarmupDelay: 500 * time.Millisecond, WatchConfig: false,
	}
	if d != wantD {
		t.Errorf("daemon\n got %+v\nwant %+v", d, wantD)
	}
	w := c.Watchers[0]
	uid, gid := 1001, 10
	want := &Watcher{
		Name: "all", File: filepath.Join(dir, "circled.ini"), Line: 14,
		Argv:       []string{"/bin/prog", "a b", "c d", "e f", "--x=1", WIDToken},
		Env:        []string{"CIRCLED_WATCHER=all", "HOME=/home/tarek", "LOGNAME=tarek", "PATH=/bin:/usr/bin", "SHELL=/bin/zsh", "USER=tarek"},
		WorkingDir: filepath.Join(dir, "work"),
		UID:        &uid, GID: &gid, Groups: []int{10, 33}, Umask: 0o27,
		User:       &User{Name: "tarek", UID: 1001, GID: 1001, Home: "/home/tarek", Shell: "/bin/zsh", Groups: []int{33, 10}},
		GroupNames: map[int]string{10: "wheel", 33: "www"},
		Rlimits:    []Rlimit{{"as", RlimInfinity}, {"core", RlimInfinity}, {"nofile", 1024}},
		CopyPath:   true, StopSignal: "INT", StopChildren: false,
		GracefulTimeout: 2500 * time.Millisecond, NumProcesses: 3, Respawn: false, MaxRetry: -1,
		Autostart: false, Priority: -7, WarmupDelay: 250 * time.Millisecond, Critical: true,
		MinUptime: 3 * time.Second, BackoffMax: time.Minute,
		Flapping: Flapping{Attempts: 3, Window: 20 * time.Second, RetryIn: time.Minute, MaxRetry: 2},
		Stdout: Stream{Class: "file", Filename: filepath.Join(dir, "logs/out-"+WIDToken+".log"), MaxBytes: 1 << 20,
			BackupCount: 4, MaxAge: 7, Compress: true, TimeFormat: "%Y", FileMode: 0o644},
		Stderr:         Stream{Class: "timed", Filename: "/var/log/err.log", RotateWhen: "midnight", RotateInterval: 2, MaxBytes: 10 << 10, FileMode: 0o640},
		RespawnMode:    "never",
		Ready:          ReadyChecks{Timeout: time.Minute, Interval: 200 * time.Millisecond},
		Health:         HealthChecks{Interval: 10 * time.Second, Timeout: 5 * time.Second, Retries: 3},
		MaxAgeVariance: 30 * time.Second, MaxMemoryInterval: 5 * time.Second, Hooks: Hooks{Timeout: 30 * time.Second},
	}
	if !reflect.DeepEqual(w, want) {
		t.Errorf("watcher\n got %+v\nwant %+v", w, want)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
}

func TestShellAndSingleton(t *testing.T) {
	c, _ := mustLoad(t, `[watcher:sh]
cmd = echo a ; sleep 1
args = && echo $HOME # not a comment
shell = true
singleton = true
numprocesses = 1
[watcher:sh2]
cmd = echo a ; sleep 1
shell = yes
singleton = on
`)
	if want := []string{"/bin/sh", "-c", "echo a ; sleep 1 && echo $HOME # not a comment"}; !slices.Equal(watcher(t, c, "sh").Argv, want) {
		t.Errorf("Argv = %q, want %q", watcher(t, c, "sh").Argv, want)
	}
	if w := watcher(t, c, "sh2"); !slices.Equal(w.Argv, []string{"/bin/sh", "-c", "echo a ; sleep 1"}) || w.NumProcesses != 1 || !w.Singleton {
		t.Errorf("sh2 = %+v", w)
	}
}

func TestSubstitution(t *testing.T) {
	c, _ := mustLoad(t, `[env]
GLOBAL = g-$HOME
BRACED = ${HOME}x
UNKNOWN = [$NOPE][${NOPE}]
SELF = $GLOBAL+
MIXED = $(circus.env.home)
WIDV = w$WID-$(CIRCUS.WID)
SHELL_SUB = $(date) $ $5 $(other.thing)

[env:a*, z]
LOGDIR = /var/log/a
GLOBAL = override

[watcher:a1]
cmd = $(circle.env.BIN)/prog $(circled.env.logdir) $(Circus.Env.GLOBAL) $WID $WIDTH
working_dir = $(circle.env.HOME)/w
stdout_stream.class = file
stdout_stream.filename = $(circle.env.LOGDIR)/$(circle.wid).log
[watcher:b]
cmd = prog $(circle.env.CIRCLED_WATCHER) $(circle.env.global)
`, "HOME=/home/u", "BIN=/opt/bin")
	a := watcher(t, c, "a1")
	if want := []string{"/opt/bin/prog", "/var/log/a", "override", WIDToken, "$WIDTH"}; !slices.Equal(a.Argv, want) {
		t.Errorf("a1 Argv = %q, want %q", a.Argv, want)
	}
	if a.WorkingDir != "/home/u/w" || a.Stdout.Filename != "/var/log/a/"+WIDToken+".log" {
		t.Errorf("a1 WorkingDir %q, filename %q", a.WorkingDir, a.Stdout.Filename)
	}
	wantEnv := map[string]string{
		"GLOBAL": "override", "BRACED": "/home/ux", "UNKNOWN": "[][]", "SELF": "g-/home/u+",
		"MIXED": "/home/u", "WIDV": "w" + WIDToken + "-" + WIDToken, "SHELL_SUB": "$(date) $ $5 $(other.thing)",
		"LOGDIR": "/var/log/a", "CIRCLED_WATCHER": "a1",
	}
	if got := envOf(a); !reflect.DeepEqual(got, wantEnv) {
		t.Errorf("a1 env = %v\nwant %v", got, wantEnv)
	}
	b := watcher(t, c, "b")
	if want := []string{"prog", "b", "g-/home/u"}; !slices.Equal(b.Argv, want) {
		t.Errorf("b Argv = %q, want %q", b.Argv, want)
	}
}

func TestEnvOrderAndCopy(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"circled.ini": `[circled]
include = more.ini
[env:w]
K = main-pattern
[env]
K = main-global
A = 1
[watcher:w]
cmd = x
copy_env = true
`,
		"more.ini": `[env]
K = more-global
B = $A$A
[env:*]
K = more-pattern $K
PATH = $PATH:/extra
`,
	})
	c, err := Load(filepath.Join(dir, "circled.ini"), testOptions("PATH=/bin", "HOME=/h", "K=env"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "B=11", "CIRCLED_WATCHER=w", "HOME=/h", "K=more-pattern main-pattern", "PATH=/bin:/extra"}
	if got := watcher(t, c, "w").Env; !slices.Equal(got, want) {
		t.Errorf("Env = %q\nwant %q", got, want)
	}
}

func TestEnvSensecase(t *testing.T) {
	c, _ := mustLoad(t, "[watcher:webapp]\ncmd = curl\n[env:webapp]\nhttp_proxy = a\nHTTPS_PROXY = b\nFunKy_soUl = c\n")
	want := map[string]string{"http_proxy": "a", "HTTPS_PROXY": "b", "FunKy_soUl": "c", "CIRCLED_WATCHER": "webapp"}
	if got := envOf(c.Watchers[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("env = %v", got)
	}
}

func TestMultilineAndComments(t *testing.T) {
	c, _ := mustLoad(t, "; comment\n# comment\n[watcher:m]\ncmd = prog\n  --a\n\t--b\nargs = x ; y # z\n")
	if want := []string{"prog", "--a", "--b", "x", ";", "y", "#", "z"}; !slices.Equal(c.Watchers[0].Argv, want) {
		t.Errorf("Argv = %q, want %q", c.Watchers[0].Argv, want)
	}
}

// Every count and duration has a documented maximum, checked at load
// (issue 13.4): past it is an error naming file, line and key and saying
// the range; at it the config loads.
func TestBounds(t *testing.T) {
	tests := []struct {
		section, key, bad, want, max string
	}{
		{"watcher:a", "numprocesses", "9223372036854775807", "9223372036854775807 is out of range (0..100000)", "100000"},
		{"watcher:a", "numprocess", "100001", "100001 is out of range (0..100000)", "100000"},
		{"watcher:a", "numprocesses", "99999999999999999999999", "99999999999999999999999 is out of range (0..100000)", "0"},
		{"watcher:a", "graceful_timeout", "86401", `duration "86401" is out of range (at most 24h)`, "24h"},
		{"watcher:a", "graceful_timeout", "9223372036", `duration "9223372036" is out of range (at most 24h)`, "86400"},
		{"watcher:a", "max_retry", "1000001", "1000001 is out of range (-1..1000000)", "1000000"},
		{"watcher:a", "priority", "-1000001", "-1000001 is out of range (-1000000..1000000)", "-1000000"},
		{"watcher:a", "priority", "9223372036854775808", "9223372036854775808 is out of range (-1000000..1000000)", "1000000"},
		{"watcher:a", "warmup_delay", "3601", `duration "3601" is out of range (at most 1h)`, "1h"},
		{"watcher:a", "min_uptime", "366d", `invalid duration "366d" (want seconds such as 2.5, or a duration such as 10s)`, "8760h"},
		{"watcher:a", "min_uptime", "8761h", `duration "8761h" is out of range (at most 365 days)`, "8760h"},
		{"watcher:a", "backoff_max", "2562047h", `duration "2562047h" is out of range (at most 365 days)`, "31536000"},
		{"watcher:a", "flapping.attempts", "10001", "10001 is out of range (1..10000)", "10000"},
		{"watcher:a", "flapping.window", "1e12", `duration "1e12" is out of range (at most 365 days)`, "8760h"},
		{"watcher:a", "flapping.retry_in", "31536001", `duration "31536001" is out of range (at most 365 days)`, "31536000"},
		{"watcher:a", "flapping.max_retry", "2000000", "2000000 is out of range (-1..1000000)", "-1"},
		{"circled", "graceful_timeout", "25h", `duration "25h" is out of range (at most 24h)`, "24h"},
		{"circled", "warmup_delay", "2h", `duration "2h" is out of range (at most 1h)`, "3600"},
		{"circled", "logfile_max_bytes", "2TB", `size "2TB" is out of range (at most 1 TiB)`, "1TB"},
		{"circled", "logfile_backups", "10001", "10001 is out of range (0..10000)", "10000"},
		// Stream keys (issue 13.5): lumberjack's max_age cutoff and the timed
		// rotation's period must not overflow.
		{"watcher:a", "stdout_stream.max_age", "999999", "999999 is out of range (0..3650 days)", "3650"},
		{"watcher:a", "stderr_stream.backup_count", "10001", "10001 is out of range (0..10000)", "10000"},
		{"watcher:a", "stdout_stream.max_bytes", "9223372036854775807", `size "9223372036854775807" is out of range (at most 1 TiB)`, "1TiB"},
		{"watcher:a", "stdout_stream.rotate_interval", "9223372036854775807", "9223372036854775807 is out of range (1..31622400)", "8784"},
	}
	for _, tt := range tests {
		t.Run(tt.section+" "+tt.key+"="+tt.bad, func(t *testing.T) {
			body := "[" + tt.section + "]\n" + tt.key + " = %s\n"
			if tt.section != "circled" {
				body += "cmd = x\n"
			} else {
				body += "[watcher:a]\ncmd = x\n"
			}
			_, err, dir := loadString(t, strings.Replace(body, "%s", tt.bad, 1))
			want := dir + "/circled.ini:2: [" + tt.section + "] " + tt.key + ": " + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("not a *Error: %T", err)
			}
			if _, err, _ := loadString(t, strings.Replace(body, "%s", tt.max, 1)); err != nil {
				t.Errorf("%s = %s: %v", tt.key, tt.max, err)
			}
		})
	}
}

// rotate_interval is bounded by rotate_when's unit: at most 366 days.
func TestRotateIntervalBound(t *testing.T) {
	for _, tt := range []struct {
		when     string
		bad, max int
	}{{"S", 31622401, 31622400}, {"M", 527041, 527040}, {"H", 8785, 8784}, {"D", 367, 366}, {"midnight", 367, 366}, {"W3", 53, 52}, {"", 8785, 8784}} {
		body := "[watcher:a]\ncmd = x\nstdout_stream.class = timed\nstdout_stream.filename = /tmp/x.log\nstdout_stream.rotate_interval = %d\n"
		when := tt.when
		if when != "" {
			body += "stdout_stream.rotate_when = " + tt.when + "\n"
		} else {
			when = "H"
		}
		_, err, dir := loadString(t, fmt.Sprintf(body, tt.bad))
		want := fmt.Sprintf("%s/circled.ini:5: [watcher:a] stdout_stream.rotate_interval: %d is out of range for rotate_when = %s (1..%d: at most 366 days)", dir, tt.bad, when, tt.max)
		if when == "S" { // seconds: the bound of every unit, checked first
			want = fmt.Sprintf("%s/circled.ini:5: [watcher:a] stdout_stream.rotate_interval: %d is out of range (1..%d)", dir, tt.bad, tt.max)
		}
		if err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
		if _, err, _ := loadString(t, fmt.Sprintf(body, tt.max)); err != nil {
			t.Errorf("rotate_when %s, rotate_interval %d: %v", tt.when, tt.max, err)
		}
	}
}

// A value that looks like it carries an inline comment loads as written
// (circus's rule) with a warning naming file, line and key (issue 20.1).
func TestInlineCommentWarning(t *testing.T) {
	c, dir := mustLoad(t, `[circled]
socket = /run/circled/circled.sock   ; default: see README "Control socket"
pidfile = /run/circled.pid # the pidfile
[watcher:a]
cmd = prog --x ; echo not a comment without shell
args = -q  # invalid option
  --b
[watcher:b]
cmd = prog --x # a shell comment
shell = true
[watcher:c]
cmd = prog 'a ; b' "c # d" e;f g#h
working_dir = /srv/app ;old
[env:a]
URL = http://h/#frag
NOTE = x	; y
`)
	if got := c.Daemon.Socket; got != `/run/circled/circled.sock   ; default: see README "Control socket"` {
		t.Errorf("socket = %q (the value is kept as written)", got)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, strings.ReplaceAll(w.String(), dir, "{dir}"))
	}
	want := []string{
		`{dir}/circled.ini:2: [circled] socket: " ;" looks like an inline comment, but there are none (as in circus): the value is "/run/circled/circled.sock   ; default: see README \"Control socket\""; put comments on their own line`,
		`{dir}/circled.ini:3: [circled] pidfile: " #" looks like an inline comment, but there are none (as in circus): the value is "/run/circled.pid # the pidfile"; put comments on their own line`,
		`{dir}/circled.ini:6: [watcher:a] args: " #" looks like an inline comment, but there are none (as in circus): the value is "-q  # invalid option\n  --b"; put comments on their own line`,
		`{dir}/circled.ini:13: [watcher:c] working_dir: " ;" looks like an inline comment, but there are none (as in circus): the value is "/srv/app ;old"; put comments on their own line`,
		`{dir}/circled.ini:16: [env:a] NOTE: " ;" looks like an inline comment, but there are none (as in circus): the value is "x\t; y"; put comments on their own line`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// circus's check_flapping = false turns flapping detection off:
// Flapping.Attempts = 0, which watcher.Policy reads as "never flap"
// (issue 12.6).
func TestCheckFlapping(t *testing.T) {
	c, dir := mustLoad(t, "[watcher:off]\ncmd = x\ncheck_flapping = false\n[watcher:on]\ncmd = x\ncheck_flapping = yes\nflapping.attempts = 7\n"+
		"[watcher:both]\ncmd = x\nflapping.attempts = 7\ncheck_flapping = off\n")
	if got := watcher(t, c, "off").Flapping; got.Attempts != 0 || got.Window != 10*time.Second {
		t.Errorf("off: %+v", got)
	}
	if got := watcher(t, c, "on").Flapping.Attempts; got != 7 {
		t.Errorf("on: attempts %d", got)
	}
	if got := watcher(t, c, "both").Flapping.Attempts; got != 0 {
		t.Errorf("both: attempts %d", got)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, strings.ReplaceAll(w.String(), dir, "{dir}"))
	}
	if want := []string{"{dir}/circled.ini:10: [watcher:both] flapping.attempts: ignored: check_flapping = false (line 11) turns flapping detection off"}; !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	if _, err, _ := loadString(t, "[watcher:a]\ncmd = x\ncheck_flapping = perhaps\n"); err == nil || !strings.Contains(err.Error(), `:3: [watcher:a] check_flapping: invalid boolean "perhaps"`) {
		t.Errorf("error %v", err)
	}
}

// Names made of letters (any script), digits and _ . - : @ load.
func TestValidNames(t *testing.T) {
	c, _ := mustLoad(t, "[watcher:a-b.c_d:e@f]\ncmd = x\n[watcher:café2]\ncmd = x\n[watcher:web:8080]\ncmd = x\n[env:a-b.c_d:e@f, caf?2, web*]\nX = 1\n")
	for _, n := range []string{"a-b.c_d:e@f", "café2", "web:8080"} {
		if envOf(watcher(t, c, n))["X"] != "1" {
			t.Errorf("%s: env section not applied", n)
		}
	}
}

func TestOrdering(t *testing.T) {
	c, _ := mustLoad(t, "[watcher:c]\ncmd=x\n[watcher:b]\ncmd=x\npriority=5\n[watcher:a]\ncmd=x\n[watcher:z]\ncmd=x\npriority=10\n")
	var names []string
	for _, w := range c.Watchers {
		names = append(names, w.Name)
	}
	if want := []string{"z", "b", "a", "c"}; !slices.Equal(names, want) {
		t.Errorf("order = %q, want %q", names, want)
	}
}

func TestStreamClasses(t *testing.T) {
	c, _ := mustLoad(t, `[watcher:a]
cmd = x
stdout_stream.class = null
stderr_stream.class = stdout
[watcher:b]
cmd = x
stdout_stream.class = circus.stream.StdoutStream
stderr_stream.class = StdoutStream
[watcher:c]
cmd = x
stdout_stream.class = NullStream
redirect_stderr = true
`)
	a, b, cc := watcher(t, c, "a"), watcher(t, c, "b"), watcher(t, c, "c")
	if a.Stdout.Class != "null" || !a.RedirectStderr {
		t.Errorf("a: %+v %v", a.Stdout, a.RedirectStderr)
	}
	if b.Stdout.Class != "stdout" || b.Stderr.Class != "stdout" || b.RedirectStderr {
		t.Errorf("b: %+v %+v %v", b.Stdout, b.Stderr, b.RedirectStderr)
	}
	if cc.Stdout.Class != "null" || !cc.RedirectStderr {
		t.Errorf("c: %+v %v", cc.Stdout, cc.RedirectStderr)
	}
}

// TestErrors checks exact messages. {dir} stands for the temp dir.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		ini  string
		want []string
	}{
		{"missing cmd", "[watcher:a]\nnumprocesses = 2\n",
			[]string{"{dir}/circled.ini:1: [watcher:a] cmd: required key is missing"}},
		{"empty cmd", "[watcher:a]\ncmd =\n",
			[]string{"{dir}/circled.ini:2: [watcher:a] cmd: must not be empty"}},
		{"did you mean key", "[watcher:a]\ncmd = x\nnumprocesess = 2\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] numprocesess: unknown key; did you mean "numprocesses"?`}},
		{"unknown key far", "[watcher:a]\ncmd = x\nfrobnicate = 2\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] frobnicate: unknown key`}},
		{"did you mean daemon key", "[circled]\nsocket_mod = 0600\n",
			[]string{`{dir}/circled.ini:2: [circled] socket_mod: unknown key; did you mean "socket_mode"?`}},
		{"did you mean section", "[watchr:a]\ncmd = x\n",
			[]string{`{dir}/circled.ini:1: [watchr:a]: unknown section; did you mean [watcher:a]?`}},
		{"did you mean circled", "[circld]\n",
			[]string{`{dir}/circled.ini:1: [circld]: unknown section; did you mean [circled]?`}},
		{"unknown rlimit", "[watcher:a]\ncmd = x\nrlimit_nofle = 1\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] rlimit_nofle: unknown resource limit; did you mean "rlimit_nofile"?`}},
		{"all errors reported", "[watcher:a]\ncmd = x\nnumprocesses = -1\nshell = maybe\n[watcher:b]\ngraceful_timeout = -3\nstop_signal = SIGFOO\n",
			[]string{
				`{dir}/circled.ini:3: [watcher:a] numprocesses: -1 is out of range (0..100000)`,
				`{dir}/circled.ini:4: [watcher:a] shell: invalid boolean "maybe" (want true/false, yes/no, on/off or 1/0)`,
				`{dir}/circled.ini:5: [watcher:b] cmd: required key is missing`,
				`{dir}/circled.ini:6: [watcher:b] graceful_timeout: negative duration "-3"`,
				`{dir}/circled.ini:7: [watcher:b] stop_signal: unknown signal "SIGFOO"`,
			}},
		{"bad duration", "[watcher:a]\ncmd = x\nmin_uptime = soon\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] min_uptime: invalid duration "soon" (want seconds such as 2.5, or a duration such as 10s)`}},
		{"bad priority", "[watcher:a]\ncmd = x\npriority = high\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] priority: invalid integer "high"`}},
		{"bad socket_mode", "[circled]\nsocket_mode = 0800\n",
			[]string{`{dir}/circled.ini:2: [circled] socket_mode: invalid octal mode "0800"`}},
		{"bad logfile_mode", "[circled]\nlogfile_mode = 01777\n",
			[]string{`{dir}/circled.ini:2: [circled] logfile_mode: mode "01777" is larger than 0777`}},
		{"bad file_mode", "[watcher:a]\ncmd = x\nstderr_stream.file_mode = rw-r-----\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] stderr_stream.file_mode: invalid octal mode "rw-r-----"`}},
		{"singleton", "[watcher:a]\ncmd = x\nsingleton = true\nnumprocesses = 2\n",
			[]string{`{dir}/circled.ini:4: [watcher:a] numprocesses: 2 processes for a singleton watcher (want at most 1)`}},
		{"unknown env var", "[watcher:a]\ncmd = echo $(circus.env.myvar)\n",
			[]string{`{dir}/circled.ini:2: [watcher:a] cmd: unknown variable $(circus.env.myvar): myvar is not in circled's environment nor in the watcher's env`}},
		{"unknown reference", "[watcher:a]\ncmd = echo $(circle.foo)\n",
			[]string{`{dir}/circled.ini:2: [watcher:a] cmd: unknown reference $(circle.foo) (want $(circle.env.NAME) or $(circle.wid))`}},
		{"wid not allowed", "[watcher:a]\ncmd = x\nworking_dir = /w/$(circle.wid)\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] working_dir: $(circle.wid) is only allowed in cmd, args, env values and stream filenames`}},
		{"unknown env var in env section", "[watcher:a]\ncmd = x\n[env]\nX = $(circle.env.NOPE)\n",
			[]string{`{dir}/circled.ini:4: [env] X: unknown variable $(circle.env.NOPE): NOPE is not in circled's environment nor in the watcher's env (for watcher "a")`}},
		{"user not found", "[watcher:a]\ncmd = x\nuid = me\ngid = nogroup\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] uid: user "me" not found`, `{dir}/circled.ini:4: [watcher:a] gid: group "nogroup" not found`}},
		{"both numprocess spellings", "[watcher:a]\ncmd = x\nnumprocess = 1\nnumprocesses = 2\n",
			[]string{`{dir}/circled.ini:4: [watcher:a] numprocesses: numprocesses is already set at line 3 (as numprocess)`}},
		{"duplicate key", "[watcher:a]\ncmd = x\nCMD = y\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] CMD: duplicate key (first at line 2)`}},
		{"duplicate section", "[watcher:a]\ncmd = x\n[watcher:a]\ncmd = y\n",
			[]string{`{dir}/circled.ini:3: [watcher:a]: duplicate section (first at line 1)`}},
		{"key outside section", "cmd = x\n",
			[]string{`{dir}/circled.ini:1: cmd: key outside any section`}},
		{"not a key", "[watcher:a]\ncmd = x\njunk\n",
			[]string{`{dir}/circled.ini:3: expected [section] or key = value, got "junk"`}},
		{"unterminated quote", "[watcher:a]\ncmd = echo 'a\n",
			[]string{`{dir}/circled.ini:2: [watcher:a] cmd: unterminated single quote`}},
		{"file stream without filename", "[watcher:a]\ncmd = x\nstdout_stream.class = FileStream\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] stdout_stream.class: stdout_stream.filename is required for this class`}},
		{"bad stream class", "[watcher:a]\ncmd = x\nstdout_stream.class = FileStrem\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] stdout_stream.class: unknown stream class "FileStrem" (want StdoutStream, FileStream, TimedRotatingFileStream or NullStream); did you mean "FileStream"?`}},
		{"bad size", "[watcher:a]\ncmd = x\nstdout_stream.max_bytes = lots\n",
			[]string{`{dir}/circled.ini:3: [watcher:a] stdout_stream.max_bytes: invalid size "lots" (want bytes, or a number with KB, MB, GB or TB)`}},
		{"bad watcher name", "[watcher:a b]\ncmd = x\n",
			[]string{`{dir}/circled.ini:1: [watcher:a b]: watcher name "a b": ' ' is not allowed (allowed: letters, digits and _ . - : @)`}},
		{"bidi in watcher name", "[watcher:ab\u202ecd]\ncmd = x\n",
			[]string{"{dir}/circled.ini:1: [watcher:ab\u202ecd]: watcher name \"ab\\u202ecd\": '\\u202e' is not allowed (allowed: letters, digits and _ . - : @)"}},
		{"C1 in watcher name", "[watcher:a\u0085b]\ncmd = x\n",
			[]string{"{dir}/circled.ini:1: [watcher:a\u0085b]: watcher name \"a\\u0085b\": '\\u0085' is not allowed (allowed: letters, digits and _ . - : @)"}},
		{"invalid UTF-8 in watcher name", "[watcher:a\xff]\ncmd = x\n",
			[]string{"{dir}/circled.ini:1: [watcher:a\xff]: watcher name \"a\\xff\" is not valid UTF-8 (allowed: letters, digits and _ . - : @)"}},
		{"slash in watcher name", "[watcher:a/b]\ncmd = x\n",
			[]string{`{dir}/circled.ini:1: [watcher:a/b]: watcher name "a/b": '/' is not allowed (allowed: letters, digits and _ . - : @)`}},
		{"glob in watcher name", "[watcher:a*]\ncmd = x\n",
			[]string{`{dir}/circled.ini:1: [watcher:a*]: watcher name "a*": '*' is not allowed (allowed: letters, digits and _ . - : @)`}},
		{"dot dot watcher name", "[watcher:..]\ncmd = x\n",
			[]string{`{dir}/circled.ini:1: [watcher:..]: watcher name ".." is not allowed`}},
		{"dash watcher name", "[watcher:-v]\ncmd = x\n",
			[]string{`{dir}/circled.ini:1: [watcher:-v]: watcher name "-v" may not start with -`}},
		{"long watcher name", "[watcher:" + strings.Repeat("a", 129) + "]\ncmd = x\n",
			[]string{`{dir}/circled.ini:1: [watcher:` + strings.Repeat("a", 129) + `]: watcher name "aaaaaaaaaaaaaaaaaaaa"... is 129 bytes long (at most 128)`}},
		{"bad env pattern chars", "[watcher:a]\ncmd = x\n[env:a, b c]\nX=1\n",
			[]string{`{dir}/circled.ini:3: [env:a, b c]: watcher pattern "b c": ' ' is not allowed (allowed: letters, digits and _ . - : @, and the glob characters * ? [ ] ^ \)`}},
		{"NUL in cmd", "[watcher:a]\ncmd = x\x00y\n",
			[]string{`{dir}/circled.ini:2: [watcher:a] cmd: NUL character (\x00) is not allowed`}},
		{"NUL in args continuation", "[watcher:a]\ncmd = x\nargs = y\n  z\x00\n",
			[]string{`{dir}/circled.ini:4: [watcher:a] args: NUL character (\x00) is not allowed`}},
		{"NUL in env value", "[watcher:a]\ncmd = x\n[env]\nX = 1\x00\n",
			[]string{`{dir}/circled.ini:4: [env] X: NUL character (\x00) is not allowed`}},
		{"NUL in key", "[watcher:a]\ncmd = x\n[env]\nX\x00Y = 1\n",
			[]string{`{dir}/circled.ini:4: [env] X\x00Y: NUL character (\x00) is not allowed`}},
		{"NUL in section name", "[watcher:a\x00]\ncmd = x\n",
			[]string{`{dir}/circled.ini:1: [watcher:a\x00]: NUL character (\x00) is not allowed`}},
		{"NUL in daemon value", "[circled]\npidfile = /run/x\x00\n",
			[]string{`{dir}/circled.ini:2: [circled] pidfile: NUL character (\x00) is not allowed`}},
		{"bad env pattern", "[watcher:a]\ncmd = x\n[env:[]\nX=1\n",
			[]string{`{dir}/circled.ini:3: [env:[]: bad pattern "[": syntax error in pattern`}},
		{"bad loglevel", "[circus]\nloglevel = loud\n",
			[]string{`{dir}/circled.ini:2: [circus] loglevel: invalid log level "loud" (want debug, info, warn or error)`}},
		{"backtick value", "[watcher:a]\ncmd = `x`\n",
			[]string{"{dir}/circled.ini:2: [watcher:a] cmd: a value may not start with ` or \"\"\" (quote it differently)"}},
		{"quoted key", "[watcher:a]\n\"cmd\" = x\n",
			[]string{`{dir}/circled.ini:2: "cmd": quoted key names are not supported`}},
		{"unclosed section", "[watcher:a\ncmd = x\n",
			[]string{`{dir}/circled.ini:1: unclosed section header "[watcher:a"`, `{dir}/circled.ini:2: cmd: key outside any section`}},
		{"stray section name", "[DEFAULT]\n",
			[]string{`{dir}/circled.ini:1: [DEFAULT]: section name not allowed`}},
		{"bad include pattern", "[circled]\ninclude = [\n",
			[]string{`{dir}/circled.ini:2: [circled] include: bad pattern "[": syntax error in pattern`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err, dir := loadString(t, tt.ini, "HOME=/h")
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if c != nil {
				t.Errorf("config returned with an error")
			}
			want := strings.ReplaceAll(strings.Join(tt.want, "\n"), "{dir}", dir)
			if err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is not a *Error: %T", err)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	c, dir := mustLoad(t, `[circus]
check_delay = 5
endpoint = tcp://127.0.0.1:$(circus.env.ENDPOINT_PORT)
[watcher:a]
cmd = x --fd $(circus.sockets.web)
hooks.before_start = a.b
use_sockets = true
stdout_stream.refresh_time = 0.3
stdout_stream.utc = true
hooks.extended_stats = a.c
[socket:web]
host = localhost
[plugin:p]
use = x
`)
	var got []string
	for _, w := range c.Warnings {
		got = append(got, strings.ReplaceAll(w.String(), dir, "{dir}"))
	}
	want := []string{
		"{dir}/circled.ini:2: [circus] check_delay: circus setting not implemented by circled; ignored",
		"{dir}/circled.ini:3: [circus] endpoint: circus setting not implemented by circled; ignored",
		`{dir}/circled.ini:6: [watcher:a] hooks.before_start: "a.b" is a circus (Python) hook: circle hooks are commands (run with the watcher's environment plus CIRCLED_EVENT, CIRCLED_WATCHER, ...; write a command with a path, such as ./check.sh, to run a file); ignored`,
		"{dir}/circled.ini:8: [watcher:a] stdout_stream.refresh_time: stream setting not implemented by circled; ignored",
		"{dir}/circled.ini:9: [watcher:a] stdout_stream.utc: stream setting not implemented by circled; ignored",
		"{dir}/circled.ini:10: [watcher:a] hooks.extended_stats: hook not implemented by circled (its hooks are hooks.before_start, hooks.after_start, hooks.before_stop, hooks.after_stop, hooks.before_spawn, hooks.after_spawn, hooks.before_signal, hooks.after_signal, hooks.on_exit, hooks.on_fatal and hooks.timeout); ignored",
		"{dir}/circled.ini:13: [plugin:p]: circus plugins are not supported by circled; section ignored",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if want := []string{"x", "--fd", SocketToken("web")}; !slices.Equal(c.Watchers[0].Argv, want) {
		t.Errorf("Argv = %q", c.Watchers[0].Argv)
	}
	if w := c.Watchers[0]; len(w.Sockets) != 1 || w.Sockets[0].Name != "web" || w.ExpandSocketTokens(w.Argv[2]) != "3" {
		t.Errorf("Sockets = %+v", w.Sockets)
	}
}

func TestDuplicateWatcherAcrossFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"circled.ini":  "[circled]\ninclude = conf/*.ini\n\n[watcher:web]\ncmd = x\n",
		"conf/a.ini":   "\n[watcher:web]\ncmd = y\n",
		"conf/b.ini":   "[watcher:other]\ncmd = y\n[watcher:other2]\n",
		"conf/c.ini.x": "not ini",
	})
	_, err := Load(filepath.Join(dir, "circled.ini"), testOptions())
	want := dir + `/conf/a.ini:2: [watcher:web]: watcher "web" is already defined at ` + dir + "/circled.ini:4\n" +
		dir + "/conf/b.ini:3: [watcher:other2] cmd: required key is missing"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestIncludeOrder(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main/circled.ini": `[circled]
include = ../z.ini b/*.ini ../z.ini circled.ini a.ini missing*.ini
include_dir = d /nonexistent-dir-for-test
graceful_timeout = 5
[env]
ORDER = main
[watcher:m]
cmd = x
`,
		"z.ini":              "[env]\nORDER = $ORDER,z\n[watcher:z]\ncmd = x\n",
		"main/a.ini":         "[env]\nORDER = $ORDER,a\n[circus]\ngraceful_timeout = 7\ninclude = nope.ini\ncheck_delay = 2\n",
		"main/b/one.ini":     "[env]\nORDER = $ORDER,b1\n",
		"main/b/.hidden.ini": "garbage",
		"main/d/two.ini":     "[env]\nORDER = $ORDER,d2\n",
		"main/d/a.txt":       "garbage",
		"main/conf.d/no.ini": "garbage, conf.d is not the default when include is set",
	})
	c, err := Load(filepath.Join(dir, "main/circled.ini"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{dir + "/main/circled.ini", dir + "/main/a.ini", dir + "/main/b/one.ini", dir + "/main/d/two.ini", dir + "/z.ini"}
	if !slices.Equal(c.Files, wantFiles) {
		t.Errorf("Files = %q\nwant %q", c.Files, wantFiles)
	}
	if want := []string{dir, dir + "/main", dir + "/main/b", dir + "/main/d"}; !slices.Equal(c.WatchDirs, want) {
		t.Errorf("WatchDirs = %q, want %q", c.WatchDirs, want)
	}
	if got := envOf(watcher(t, c, "z"))["ORDER"]; got != "main,a,b1,d2,z" {
		t.Errorf("ORDER = %q", got)
	}
	if c.Daemon.GracefulTimeout != 7*time.Second || watcher(t, c, "m").GracefulTimeout != 7*time.Second {
		t.Errorf("graceful_timeout %v / %v", c.Daemon.GracefulTimeout, watcher(t, c, "m").GracefulTimeout)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, strings.ReplaceAll(w.String(), dir, "{dir}"))
	}
	want := []string{
		`{dir}/main/circled.ini:2: [circled] include: "missing*.ini" matches no file`,
		`{dir}/main/circled.ini:3: [circled] include_dir: directory /nonexistent-dir-for-test does not exist`,
		`{dir}/main/a.ini:4: [circus] graceful_timeout: overrides the value set at {dir}/main/circled.ini:4`,
		`{dir}/main/a.ini:5: [circus] include: ignored: includes are only followed from the main file`,
		`{dir}/main/a.ini:6: [circus] check_delay: circus setting not implemented by circled; ignored`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestConfDDefault(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"circled.ini":        "[circled]\nsocket = /tmp/x.sock\n",
		"conf.d/b.ini":       "[watcher:b]\ncmd = x\n",
		"conf.d/a.ini":       "[watcher:a]\ncmd = x\npriority = 1\n",
		"conf.d/sub/c.ini":   "[watcher:c]\ncmd = x\n",
		"conf.d/notini.conf": "junk",
	})
	c, err := Load(filepath.Join(dir, "circled.ini"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{dir + "/circled.ini", dir + "/conf.d/a.ini", dir + "/conf.d/b.ini"}; !slices.Equal(c.Files, want) {
		t.Errorf("Files = %q", c.Files)
	}
	if want := []string{dir, dir + "/conf.d"}; !slices.Equal(c.WatchDirs, want) {
		t.Errorf("WatchDirs = %q", c.WatchDirs)
	}
	if len(c.Watchers) != 2 || c.Watchers[0].Name != "a" {
		t.Errorf("watchers %v", c.Watchers)
	}
	// An explicit empty include turns the default off.
	if err := os.WriteFile(filepath.Join(dir, "circled.ini"), []byte("[circled]\ninclude =\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Load(filepath.Join(dir, "circled.ini"), testOptions())
	if err != nil || len(c.Files) != 1 || len(c.Watchers) != 0 {
		t.Errorf("with include = : %v %v", err, c)
	}
}

func TestSocketOnlyInMainFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"circled.ini":  "[circled]\nsocket = a.sock\n",
		"conf.d/x.ini": "[circled]\nsocket = b.sock\n",
	})
	_, err := Load(filepath.Join(dir, "circled.ini"), testOptions())
	want := dir + "/conf.d/x.ini:2: [circled] socket: socket may only be set in the main file (circlectl reads only that file)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v", err)
	}
}

func TestReadDaemon(t *testing.T) {
	t.Setenv("CIRCLED_TEST_RUNDIR", "/run/test")
	dir := writeFiles(t, map[string]string{
		"circled.ini": "[circus]\nsocket = $(circle.env.CIRCLED_TEST_RUNDIR)/c.sock\nsocket_mode = 660\nlogoutput = -\ncheck_delay = 3\n[watcher:broken]\nnumprocesses = lots\n",
	})
	d, err := ReadDaemon(filepath.Join(dir, "circled.ini"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Socket != "/run/test/c.sock" || d.SocketMode != 0o660 || d.Logfile != "" || d.LogLevel != "info" {
		t.Errorf("daemon = %+v", d)
	}
	if _, err := ReadDaemon(filepath.Join(dir, "nope.ini")); err == nil || !strings.Contains(err.Error(), "nope.ini: no such file") {
		t.Errorf("missing file: %v", err)
	}
	dir = writeFiles(t, map[string]string{"circled.ini": "[circled]\nsokcet = /x\n"})
	if _, err := ReadDaemon(filepath.Join(dir, "circled.ini")); err == nil || !strings.Contains(err.Error(), `did you mean "socket"?`) {
		t.Errorf("typo: %v", err)
	}
}

func TestMissingMainFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.ini"), testOptions())
	if err == nil || !strings.HasSuffix(err.Error(), "none.ini: no such file or directory") {
		t.Errorf("err = %v", err)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]string{
		"TERM": "TERM", "SIGTERM": "TERM", "sigterm": "TERM", "15": "TERM", " int ": "INT",
		"9": "KILL", "1": "HUP", "10": "USR1", "12": "USR2", "17": "CHLD", "31": "SYS",
		"16": "16", "30": "30", "34": "34", "64": "64", "SIGWINCH": "WINCH", "iot": "ABRT",
		"BREAK": "BREAK", "sigbreak": "BREAK", "QUIT": "QUIT", "SIGIO": "IO", "vtalrm": "VTALRM",
	} {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65", "-1", "SIG", "FOO", "SIGSIGTERM", "STKFLT"} {
		if got, err := ParseSignal(in); err == nil {
			t.Errorf("ParseSignal(%q) = %q, want error", in, got)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"a b  c", []string{"a", "b", "c"}, false},
		{`a "b c" 'd e'`, []string{"a", "b c", "d e"}, false},
		{`a\ b`, []string{"a b"}, false},
		{`"a\"b\\c\$d\x"`, []string{`a"b\c$d\x`}, false},
		{`'a\b'`, []string{`a\b`}, false},
		{`x""y ''`, []string{"xy", ""}, false},
		{"a\\\nb", []string{"ab"}, false},
		{"a # b", []string{"a", "#", "b"}, false},
		{"", nil, false},
		{`"open`, nil, true},
		{`'open`, nil, true},
		{`trailing\`, nil, true},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestValues(t *testing.T) {
	for in, want := range map[string]time.Duration{"25.5": 25500 * time.Millisecond, "0": 0, "10s": 10 * time.Second, "1m30s": 90 * time.Second, " 2 ": 2 * time.Second} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"-1", "-1s", "NaN", "inf", "1e300", "x"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q): no error", in)
		}
	}
	for in, want := range map[string]int64{"10485760": 10485760, "1MB": 1 << 20, "10KB": 10 << 10, "1GiB": 1 << 30, "2k": 2048, "5 MiB": 5 << 20, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"-1", "MB", "1.5MB", "99999999999TB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
	for _, in := range []string{"TRUE", "Yes", "on", "1"} {
		if b, err := parseBool(in); err != nil || !b {
			t.Errorf("parseBool(%q)", in)
		}
	}
	for _, in := range []string{"False", "NO", "Off", "0"} {
		if b, err := parseBool(in); err != nil || b {
			t.Errorf("parseBool(%q)", in)
		}
	}
}

func TestEqual(t *testing.T) {
	dirA := writeFiles(t, map[string]string{"circled.ini": "[watcher:w]\ncmd = x\nnumprocesses = 2\n"})
	dirB := writeFiles(t, map[string]string{"circled.ini": "\n\n[watcher:w]\ncmd = x\nnumprocesses = 3\n"})
	a, err := Load(filepath.Join(dirA, "circled.ini"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(filepath.Join(dirB, "circled.ini"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	wa, wb := a.Watchers[0], b.Watchers[0]
	if wa.Equal(wb) || !wa.EqualExceptNumProcesses(wb) {
		t.Errorf("numprocesses change: Equal %v, EqualExceptNumProcesses %v", wa.Equal(wb), wa.EqualExceptNumProcesses(wb))
	}
	wb.NumProcesses = 2
	if !wa.Equal(wb) {
		t.Errorf("same watcher in another file/line is not Equal")
	}
	c := *wb
	c.Env = append(slices.Clone(c.Env), "X=1")
	if wa.Equal(&c) || wa.EqualExceptNumProcesses(&c) {
		t.Errorf("env change not detected")
	}
	uid := 5
	c = *wb
	c.UID = &uid
	if wa.Equal(&c) {
		t.Errorf("uid change not detected")
	}
	if !(*Watcher)(nil).Equal(nil) || wa.Equal(nil) {
		t.Errorf("nil handling")
	}
}

func TestWriteSummary(t *testing.T) {
	c, _ := mustLoad(t, briefConfig+"[circus]\ncheck_delay = 5\n", "ANT_PYTHON=/usr/bin/python3", "ANT_ROOT_DIR=/opt/ant")
	var b strings.Builder
	if err := c.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"watcher framework", "/usr/bin/python3 -m framework", "numprocesses:", "priority:", "working_dir:",
		"SIGTERM to the process group, SIGKILL after 30s", "ANT_MODULE_ROOT=/opt/ant", "stdout:", "stderr:",
		"1 warning(s):", "check_delay: circus setting not implemented",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
