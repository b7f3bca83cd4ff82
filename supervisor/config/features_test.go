package config

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSockets(t *testing.T) {
	if !posixProcessAttrs {
		t.Skip("sockets are a load error on " + runtime.GOOS)
	}
	c, dir := mustLoad(t, `[watcher:web]
cmd = server --fd $(circus.sockets.web) --admin=$(circle.sockets.admin)
[watcher:all]
cmd = server $(circle.sockets.web)
use_sockets = true
[watcher:none]
cmd = sleep 1
[socket:web]
host = 127.0.0.1
port = 8888
backlog = 10
so_reuseport = true
[socket:admin]
path = run/admin.sock
umask = 077
replace = true
type = SOCK_DGRAM
blocking = true
[socket:v6]
host = ::1
port = 0
[socket:a_default]
`)
	names := func(ss []Socket) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	if got := names(c.Sockets); !slices.Equal(got, []string{"a_default", "admin", "v6", "web"}) {
		t.Fatalf("Sockets = %q", got)
	}
	main := filepath.Join(dir, "circled.ini")
	want := []Socket{
		{Name: "a_default", File: main, Line: 22, Family: "AF_INET", Type: "SOCK_STREAM", Host: "localhost", Port: 8080, Backlog: 2048, Umask: -1},
		{Name: "admin", File: main, Line: 13, Family: "AF_UNIX", Type: "SOCK_DGRAM", Path: filepath.Join(dir, "run/admin.sock"), Backlog: 2048, Umask: 0o77, Replace: true, Blocking: true},
		{Name: "v6", File: main, Line: 19, Family: "AF_INET6", Type: "SOCK_STREAM", Host: "::1", Port: 0, Backlog: 2048, Umask: -1},
		{Name: "web", File: main, Line: 8, Family: "AF_INET", Type: "SOCK_STREAM", Host: "127.0.0.1", Port: 8888, Backlog: 10, Umask: -1, ReusePort: true},
	}
	if !slices.Equal(c.Sockets, want) {
		t.Errorf("Sockets\n got %+v\nwant %+v", c.Sockets, want)
	}
	web := watcher(t, c, "web")
	if got := names(web.Sockets); !slices.Equal(got, []string{"admin", "web"}) {
		t.Errorf("web uses %q", got)
	}
	var argv []string
	for _, a := range web.Argv {
		argv = append(argv, web.ExpandSocketTokens(a))
	}
	if !slices.Equal(argv, []string{"server", "--fd", "4", "--admin=3"}) {
		t.Errorf("web argv = %q (raw %q)", argv, web.Argv)
	}
	all := watcher(t, c, "all")
	if got := names(all.Sockets); !slices.Equal(got, []string{"a_default", "admin", "v6", "web"}) || all.SocketFD("web") != 6 || all.ExpandSocketTokens(all.Argv[1]) != "6" {
		t.Errorf("all uses %q, web fd %d", got, all.SocketFD("web"))
	}
	if none := watcher(t, c, "none"); none.Sockets != nil || none.SocketFD("web") != -1 {
		t.Errorf("none uses %+v", none.Sockets)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %v", c.Warnings)
	}
	if a := c.Sockets[1].Addr(); a != "unix:"+filepath.Join(dir, "run/admin.sock") {
		t.Errorf("Addr = %q", a)
	}
	if a := c.Sockets[2].Addr(); a != "[::1]:0" {
		t.Errorf("Addr = %q", a)
	}
}

func TestSocketErrors(t *testing.T) {
	if !posixProcessAttrs {
		t.Skip("sockets are a load error on " + runtime.GOOS)
	}
	for _, tt := range []struct{ name, ini, want string }{
		{"unknown socket", "[watcher:a]\ncmd = x $(circle.sockets.wbe)\n[socket:web]\nport = 1\n",
			`{dir}/circled.ini:2: [watcher:a] cmd: unknown socket "wbe" in $(circle.sockets.wbe) (no [socket:wbe] section); did you mean "web"?`},
		{"unknown in args", "[watcher:a]\ncmd = x\nargs = $(circus.sockets.nope)\n",
			`{dir}/circled.ini:3: [watcher:a] args: unknown socket "nope" in $(circus.sockets.nope) (no [socket:nope] section)`},
		{"bad port", "[socket:s]\nport = 70000\n", "{dir}/circled.ini:2: [socket:s] port: 70000 is out of range (0..65535)"},
		{"bad family", "[socket:s]\nfamily = AF_PACKET\n", `{dir}/circled.ini:2: [socket:s] family: unknown family "AF_PACKET" (want AF_INET, AF_INET6 or AF_UNIX)`},
		{"unix without path", "[socket:s]\nfamily = AF_UNIX\n", "{dir}/circled.ini:2: [socket:s] family: AF_UNIX needs path"},
		{"inet with path", "[socket:s]\nfamily = AF_INET\npath = /run/x.sock\n", "{dir}/circled.ini:2: [socket:s] family: AF_INET with path (line 3): a path is a unix socket (AF_UNIX)"},
		{"family mismatch", "[socket:s]\nhost = ::1\nfamily = AF_INET\n", "{dir}/circled.ini:2: [socket:s] host: address ::1 is not of family AF_INET"},
		{"unknown key", "[socket:s]\nbaclog = 5\n", `{dir}/circled.ini:2: [socket:s] baclog: unknown key; did you mean "backlog"?`},
		{"duplicate", "[socket:s]\n[socket:s]\n", "{dir}/circled.ini:2: [socket:s]: duplicate section (first at line 1)"},
		{"long path", "[socket:s]\npath = /" + strings.Repeat("x", 120) + "\n", "is 121 bytes long (a unix socket path is at most 103)"},
		{"bad type", "[socket:s]\ntype = SOCK_RAW\n", `{dir}/circled.ini:2: [socket:s] type: unknown type "SOCK_RAW" (want SOCK_STREAM or SOCK_DGRAM)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err, dir := loadString(t, tt.ini)
			if err == nil {
				t.Fatal("loaded")
			}
			want := strings.ReplaceAll(tt.want, "{dir}", dir)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
		})
	}
}

func TestNewWatcherKeys(t *testing.T) {
	c, _ := mustLoad(t, `[watcher:a]
cmd = x
max_age = 3600
max_age_variance = 1m
hooks.before_start = /usr/local/bin/check --fast
hooks.after_start = ./notify.sh started
hooks.before_stop = true
hooks.after_stop = logger stopped
hooks.before_spawn = a
hooks.after_spawn = b
hooks.before_signal = c
hooks.after_signal = d
hooks.on_exit = /bin/alert exit
hooks.on_fatal = /bin/alert "fatal error"
hooks.timeout = 5
`)
	w := c.Watchers[0]
	if w.MaxAge != time.Hour || w.MaxAgeVariance != time.Minute {
		t.Errorf("max_age %v %v", w.MaxAge, w.MaxAgeVariance)
	}
	want := Hooks{BeforeStart: "/usr/local/bin/check --fast", AfterStart: "./notify.sh started", BeforeStop: "true", AfterStop: "logger stopped",
		BeforeSpawn: "a", AfterSpawn: "b", BeforeSignal: "c", AfterSignal: "d", OnExit: "/bin/alert exit", OnFatal: `/bin/alert "fatal error"`, Timeout: 5 * time.Second}
	if w.Hooks != want {
		t.Errorf("Hooks\n got %+v\nwant %+v", w.Hooks, want)
	}
	for _, n := range HookNames {
		if w.Hooks.Get(n) == "" {
			t.Errorf("Hooks.Get(%s) is empty", n)
		}
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %v", c.Warnings)
	}

	// Limits: Linux has every one, Windows memory_max and cpu_max.
	limits := "[watcher:a]\ncmd = x\nmemory_max = 1G\nmemory_high = 768M\ncpu_max = 12.5%\npids_max = 64\nio_weight = 200\nmax_memory = 512MB\nmax_memory_interval = 2.5\n"
	c2, err, _ := loadString(t, limits)
	switch runtime.GOOS {
	case "linux":
		if err != nil {
			t.Fatal(err)
		}
		w := c2.Watchers[0]
		if l := w.Limits; l != (Limits{MemoryMax: 1 << 30, MemoryHigh: 768 << 20, CPUMax: 12.5, PidsMax: 64, IOWeight: 200}) {
			t.Errorf("Limits %+v", l)
		}
		if w.MaxMemory != 512<<20 || w.MaxMemoryInterval != 2500*time.Millisecond {
			t.Errorf("max_memory %d %v", w.MaxMemory, w.MaxMemoryInterval)
		}
	default:
		if err == nil || !strings.Contains(err.Error(), "memory_high: not supported on "+runtime.GOOS+" (only on linux)") {
			t.Errorf("error %v", err)
		}
	}
}

func TestNewWatcherKeyErrors(t *testing.T) {
	cases := []struct{ key, val, want string }{
		{"max_age", "-1", `negative duration "-1"`},
		{"hooks.timeout", "48h", `duration "48h" is out of range (at most 24h)`},
		{"hooks.on_exit", `"unterminated`, "unterminated"},
		{"env_file", "-", "empty path after -"},
		{"eventlistener.events", "PROCESS_STATE, TIK_60", `unknown event type "TIK_60"; did you mean "TICK_60"?`},
		{"eventlistener.buffer_size", "0", "0 is out of range (1..10000)"},
	}
	if runtime.GOOS == "linux" {
		cases = append(cases,
			struct{ key, val, want string }{"max_memory", "512", `size "512" is out of range (1 MiB..64 TiB)`},
			struct{ key, val, want string }{"max_memory", "100TB", `size "100TB" is out of range (at most 64 TiB)`},
			struct{ key, val, want string }{"max_memory", "lots", `invalid size "lots"`},
			struct{ key, val, want string }{"max_memory_interval", "0.01", `duration "0.01" is out of range (100ms..1h)`},
			struct{ key, val, want string }{"cpu_max", "0.5%", "0.5% is out of range (1..102400%)"},
			struct{ key, val, want string }{"cpu_max", "NaN", `invalid percentage "NaN"`},
			struct{ key, val, want string }{"cpu_max", "0%", "0% is out of range (1..102400%)"},
			struct{ key, val, want string }{"cpu_max", "half", `invalid percentage "half"`},
			struct{ key, val, want string }{"pids_max", "0", "0 is out of range (1..4194304)"},
			struct{ key, val, want string }{"io_weight", "10001", "10001 is out of range (1..10000)"},
		)
	}
	for _, tt := range cases {
		t.Run(tt.key+"="+tt.val, func(t *testing.T) {
			_, err, dir := loadString(t, "[watcher:a]\ncmd = x\n"+tt.key+" = "+tt.val+"\n")
			want := dir + "/circled.ini:3: [watcher:a] " + tt.key + ": " + tt.want
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v\nwant %s", err, want)
			}
		})
	}
	// buffer_size alone.
	_, err, _ := loadString(t, "[watcher:a]\ncmd = x\neventlistener.buffer_size = 5\n")
	if err == nil || !strings.Contains(err.Error(), "eventlistener.buffer_size: needs eventlistener.events") {
		t.Errorf("error %v", err)
	}
}

func TestPythonHooks(t *testing.T) {
	for _, v := range []string{"mypackage.hooks.check", "tests.test_config.hook, false", "a.b"} {
		if !isPythonHook(v) {
			t.Errorf("%q is not seen as a Python hook", v)
		}
	}
	for _, v := range []string{"check", "/bin/check.sh", "./check.sh", "check --x a.b", "a..b", "1a.b"} {
		if isPythonHook(v) {
			t.Errorf("%q is seen as a Python hook", v)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	data := "# comment\n; also a comment \\\ncontinued comment\n\n" +
		"A=1\n" +
		"  B = two words  \n" +
		"export C=exported\n" +
		"D='single $quoted \\n'\n" +
		"E=\"double \\\"q\\\" \\$HOME \\n \\\\ `x`\"\n" +
		"F=mixed\"quo ted\"'and'more\n" +
		"G=un\\ quoted\\\\\n" +
		"H=continued\\\nline\n" +
		"I='multi\nline'\n" +
		"J=\n" +
		"K=value # not a comment\r\n" +
		"export=notaprefix\n" +
		"L=\"multi\nline double\"\n" +
		"M=last"
	vars, err := parseEnvFile([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	lines := map[string]int{}
	for _, v := range vars {
		got[v.key], lines[v.key] = v.value, v.line
	}
	want := map[string]string{
		"A": "1", "B": "two words", "C": "exported", "D": `single $quoted \n`,
		"E": "double \"q\" $HOME \\n \\ `x`", "F": "mixedquo tedandmore", "G": `un quoted\`,
		"H": "continuedline", "I": "multi\nline", "J": "", "K": "value # not a comment",
		"export": "notaprefix", "L": "multi\nline double", "M": "last",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d variables: %q", len(got), got)
	}
	wantLines := map[string]int{"A": 5, "B": 6, "H": 12, "I": 14, "J": 16, "L": 19, "M": 21}
	for k, n := range wantLines {
		if lines[k] != n {
			t.Errorf("%s at line %d, want %d", k, lines[k], n)
		}
	}

	for _, tt := range []struct{ data, want string }{
		{"A=1\nNOEQUALS\n", `line 2: "NOEQUALS" has no = (want KEY=VALUE)`},
		{"A=1\n1A=2\n", `line 2: invalid variable name "1A"`},
		{"A-B=2\n", `line 1: invalid variable name "A-B"`},
		{"A='open\n", "line 1: unterminated single quote"},
		{"\n\nA=\"open\n", "line 3: unterminated double quote"},
		{"A=\xff\n", "line 1: not valid UTF-8"},
		{"A=a\x00b\n", "line 1: the value of A contains a NUL byte"},
	} {
		_, err := parseEnvFile([]byte(tt.data))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %s", tt.data, err, tt.want)
		}
	}
}

// env_file: applied before the env sections (which may use and override
// its variables), optional files, errors naming the file and line, and a
// change in a file changes only the watchers that use it (supervisor's
// reload restarts a watcher whose Watcher.Equal fails).
func TestEnvFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"circled.ini": `[watcher:uses]
cmd = x
env_file = env/app.env -$(circle.env.OPTDIR)/missing.env env/second.env
[watcher:other]
cmd = y
[env:uses]
FROM_SECTION = $PORT-x
OVERRIDE = section
`,
		"env/app.env":    "# app\nPORT=8000\nOVERRIDE=file\nSECRET='s p'\n",
		"env/second.env": "export PORT=9000\n",
	})
	path := filepath.Join(dir, "circled.ini")
	opts := testOptions("OPTDIR=" + filepath.Join(dir, "opt"))
	c1, err := Load(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	uses := watcher(t, c1, "uses")
	env := envOf(uses)
	if env["PORT"] != "9000" || env["OVERRIDE"] != "section" || env["SECRET"] != "s p" || env["FROM_SECTION"] != "9000-x" {
		t.Errorf("env %q", uses.Env)
	}
	wantFiles := []EnvFile{{Path: filepath.Join(dir, "env/app.env")}, {Path: filepath.Join(dir, "opt/missing.env"), Optional: true}, {Path: filepath.Join(dir, "env/second.env")}}
	if !slices.Equal(uses.EnvFiles, wantFiles) {
		t.Errorf("EnvFiles %+v", uses.EnvFiles)
	}
	wantEnvFiles := []string{filepath.Join(dir, "env/app.env"), filepath.Join(dir, "env/second.env"), filepath.Join(dir, "opt/missing.env")}
	if !slices.Equal(c1.EnvFiles, wantEnvFiles) || !slices.Equal(c1.Files, append([]string{path}, wantEnvFiles...)) {
		t.Errorf("EnvFiles %q Files %q", c1.EnvFiles, c1.Files)
	}
	if !slices.Contains(c1.WatchDirs, filepath.Join(dir, "env")) {
		t.Errorf("WatchDirs %q", c1.WatchDirs)
	}

	// Unchanged files: the same watchers.
	c2, err := Load(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"uses", "other"} {
		if !watcher(t, c1, name).Equal(watcher(t, c2, name)) {
			t.Errorf("%s changed without a change", name)
		}
	}
	// A change in a file (read again by the next Load): only its user
	// changes, and not live (its processes restart).
	if err := os.WriteFile(filepath.Join(dir, "env/app.env"), []byte("PORT=8000\nSECRET=new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The optional file appears.
	if err := os.MkdirAll(filepath.Join(dir, "opt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "opt/missing.env"), []byte("NEW=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c3, err := Load(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	u1, u3 := watcher(t, c1, "uses"), watcher(t, c3, "uses")
	if u1.Equal(u3) || u1.EqualExceptLive(u3) || u1.EqualExceptNumProcesses(u3) {
		t.Errorf("uses did not change: %q", u3.Env)
	}
	if e := envOf(u3); e["SECRET"] != "new" || e["NEW"] != "1" || e["PORT"] != "9000" {
		t.Errorf("env after the change %q", u3.Env)
	}
	if !watcher(t, c1, "other").Equal(watcher(t, c3, "other")) {
		t.Error("other changed")
	}

	// Errors name the env file and its line, or the key.
	if err := os.WriteFile(filepath.Join(dir, "env/app.env"), []byte("OK=1\n\nbad line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path, opts)
	want := filepath.Join(dir, "env/app.env") + `:3: [watcher:uses] env_file: "bad line" has no = (want KEY=VALUE) (env_file at ` + path + ":3)"
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
	if err := os.Remove(filepath.Join(dir, "env/app.env")); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path, opts)
	want = path + ":3: [watcher:uses] env_file: " + filepath.Join(dir, "env/app.env") + " does not exist (a leading - makes an env file optional)"
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
	if err := os.Mkdir(filepath.Join(dir, "env/app.env"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path, opts)
	if err == nil || !strings.Contains(err.Error(), "env/app.env: not a regular file: a directory") {
		t.Errorf("error %v", err)
	}
}

// A file bigger than MaxEnvFileSize is refused.
func TestEnvFileTooBig(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"circled.ini": "[watcher:a]\ncmd = x\nenv_file = big.env\n",
		"big.env":     "A=" + strings.Repeat("x", MaxEnvFileSize) + "\n",
	})
	_, err := Load(filepath.Join(dir, "circled.ini"), testOptions())
	if err == nil || !strings.Contains(err.Error(), "larger than the maximum of 1048576 (1 MiB)") {
		t.Errorf("error %v", err)
	}
}

func TestSupervisordEventListener(t *testing.T) {
	dir := writeFiles(t, map[string]string{"supervisord.conf": `[supervisord]
[program:web]
command = /bin/sleep 100
[eventlistener:crashmail]
command = crashmail -a -m root@localhost
events = PROCESS_STATE_EXITED, tick_60,PROCESS_STATE_EXITED
buffer_size = 50
result_handler = mymod:handler
[eventlistener:memmon]
command = memmon -a 200MB
events = TICK_60
`})
	c, err := Load(filepath.Join(dir, "supervisord.conf"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	cm := watcher(t, c, "crashmail")
	if el := cm.EventListener; el == nil || !slices.Equal(el.Events, []string{"PROCESS_STATE_EXITED", "TICK_60"}) || el.BufferSize != 50 {
		t.Errorf("crashmail %+v", cm.EventListener)
	}
	if el := watcher(t, c, "memmon").EventListener; el == nil || el.BufferSize != DefaultEventBuffer {
		t.Errorf("memmon %+v", el)
	}
	if watcher(t, c, "web").EventListener != nil {
		t.Error("web is a listener")
	}
	found := false
	for _, w := range c.Warnings {
		found = found || strings.Contains(w.String(), "result_handler: circled has only supervisor's default result handler")
	}
	if !found {
		t.Errorf("no result_handler warning in %v", c.Warnings)
	}

	// Converted, the listener stays one.
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
	if el := watcher(t, c2, "crashmail").EventListener; el == nil || !slices.Equal(el.Events, cm.EventListener.Events) || el.BufferSize != 50 {
		t.Errorf("converted crashmail %+v", el)
	}

	for _, tt := range []struct{ sec, want string }{
		{"[eventlistener:x]\ncommand = y\n", "[eventlistener:x] events: an event listener needs events"},
		{"[eventlistener:x]\ncommand = y\nevents = PROCESS_STAT\n", `[eventlistener:x] events: unknown event type "PROCESS_STAT"; did you mean "PROCESS_STATE"?`},
		{"[eventlistener:x]\ncommand = y\nevents = TICK_5\nredirect_stderr = true\n", "redirect_stderr = true is not allowed"},
		{"[eventlistener:x]\ncommand = y\nevents = TICK_5\nbuffer_size = 0\n", "buffer_size: 0 is out of range (1..10000)"},
		{"[program:x]\ncommand = y\n[eventlistener:x]\ncommand = y\nevents = TICK_5\n", `[eventlistener:x]: the name "x" is already a program's`},
		{"[program:x]\ncommand = y\nevents = TICK_5\n", `[program:x] events: unknown key`},
	} {
		d := writeFiles(t, map[string]string{"supervisord.conf": "[supervisord]\n" + tt.sec})
		_, err := Load(filepath.Join(d, "supervisord.conf"), testOptions())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %s", tt.sec, err, tt.want)
		}
	}
}

func TestSocketNameWithColon(t *testing.T) {
	if !posixProcessAttrs {
		t.Skip("sockets are a load error on " + runtime.GOOS)
	}
	_, err, _ := loadString(t, "[socket:a:b]\nport = 1\n")
	if err == nil || !strings.Contains(err.Error(), `socket name "a:b" may not contain ':'`) {
		t.Errorf("error %v", err)
	}
}

// circled check shows the sockets, their descriptors and the new keys.
func TestSummaryNewKeys(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("limits are Linux's")
	}
	c, _ := mustLoad(t, `[watcher:web]
cmd = server --fd $(circle.sockets.web)
max_age = 60
memory_max = 1G
cpu_max = 50%
max_memory = 512M
hooks.on_exit = /bin/alert
[socket:web]
host = 127.0.0.1
port = 8888
so_reuseport = true
`)
	var b strings.Builder
	if err := c.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"socket web:  127.0.0.1:8888 SOCK_STREAM backlog=2048 so_reuseport", "server --fd 3", "sockets:", "web=fd 3",
		"max_age:", "memory_max=1 GiB cpu_max=50%", "max_memory:", "hooks.on_exit:"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
}

// parseEnvFile never panics, and every line it reports is within the
// input; a value written back in single quotes (no ' inside) parses to
// itself.
func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"A=1\n", "export B='x y'\n# c\n; d\n", "C=\"a\\\"b\\\nc\"\n", "D=a\\\nb", "E='open", "F=\"open", "=x", "G", "H=\xff", "I=a\x00b", "#\\\nJ=1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := parseEnvFile(data)
		if err != nil {
			return
		}
		lines := 1 + strings.Count(string(data), "\n")
		for _, v := range vars {
			if v.line < 1 || v.line > lines || !validName(v.key) {
				t.Fatalf("%q: bad var %+v", data, v)
			}
			if !strings.Contains(v.value, "'") {
				back, err := parseEnvFile([]byte(v.key + "='" + v.value + "'\n"))
				if err != nil || len(back) != 1 || back[0].value != v.value {
					t.Fatalf("%q: %q does not round-trip: %+v %v", data, v.value, back, err)
				}
			}
		}
	})
}
