package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var svEnv = []string{"PATH=/usr/bin:/bin", "HOME=/home/op", "TMPDIR=/var/tmp"}

// The corpus of supervisord configurations: each loads, converts, and the
// converted files load to the same watchers and daemon settings.
func TestSupervisordConvertRoundTrip(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/supervisord/*/supervisord.conf")
	if len(dirs) < 3 {
		t.Fatalf("corpus too small: %v", dirs)
	}
	for _, p := range dirs {
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			orig, err := Load(p, testOptions(svEnv...))
			if err != nil {
				t.Fatal(err)
			}
			cfg, files, err := ConvertSupervisord(p, testOptions(svEnv...))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Watchers, orig.Watchers) {
				t.Fatal("ConvertSupervisord resolved other watchers than Load")
			}
			out := t.TempDir()
			for _, f := range files {
				fp := filepath.Join(out, f.Name)
				if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(fp, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			conv, err := Load(filepath.Join(out, "circled.ini"), testOptions(svEnv...))
			if err != nil {
				for _, f := range files {
					t.Logf("%s:\n%s", f.Name, f.Data)
				}
				t.Fatal(err)
			}
			if !reflect.DeepEqual(conv.Daemon, orig.Daemon) {
				t.Errorf("daemon:\n got %+v\nwant %+v", conv.Daemon, orig.Daemon)
			}
			if conv.Supervisord != orig.Supervisord {
				t.Errorf("supervisord settings:\n got %+v\nwant %+v", conv.Supervisord, orig.Supervisord)
			}
			if len(conv.Watchers) != len(orig.Watchers) {
				t.Fatalf("%d watchers, want %d", len(conv.Watchers), len(orig.Watchers))
			}
			for i, w := range orig.Watchers {
				c := conv.Watchers[i]
				if !c.Equal(w) {
					a, b := normalized(c), normalized(w)
					va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
					for f := 0; f < va.NumField(); f++ {
						if !reflect.DeepEqual(va.Field(f).Interface(), vb.Field(f).Interface()) {
							t.Errorf("watcher %s: %s:\n got %#v\nwant %#v", w.Name, va.Type().Field(f).Name, va.Field(f).Interface(), vb.Field(f).Interface())
						}
					}
				}
			}
			for _, wn := range conv.Warnings {
				t.Errorf("converted config warns: %s", wn)
			}
		})
	}
}

func loadSV(t *testing.T, p string) *Config {
	t.Helper()
	c, err := Load(p, testOptions(svEnv...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func watcherByNameT(t *testing.T, c *Config, name string) *Watcher {
	t.Helper()
	for _, w := range c.Watchers {
		if w.Name == name {
			return w
		}
	}
	var names []string
	for _, w := range c.Watchers {
		names = append(names, w.Name)
	}
	t.Fatalf("no watcher %q in %v", name, names)
	return nil
}

func TestSupervisordDebian(t *testing.T) {
	c := loadSV(t, "testdata/supervisord/debian/supervisord.conf")
	d := c.Daemon
	if d.Socket != "/var/run/supervisor.sock" || d.SocketMode != 0o700 || d.Pidfile != "/var/run/supervisord.pid" ||
		d.Logfile != "/var/log/supervisor/supervisord.log" || d.Umask != 0o022 || d.LogfileMaxBytes != 50<<20 || d.LogfileBackups != 10 ||
		c.Supervisord != (SupervisordSettings{Identifier: "supervisor", MinFDs: 1024, MinProcs: 200}) || d.WatchConfig {
		t.Errorf("daemon %+v", d)
	}
	if len(c.Files) != 3 {
		t.Errorf("files %v", c.Files)
	}
	cel := watcherByNameT(t, c, "celery")
	want := []string{"/srv/app/venv/bin/celery", "-A", "proj", "worker", "--loglevel=INFO"}
	if !slices.Equal(cel.Argv, want) || cel.WorkingDir != "/srv/app" || *cel.UID != 33 || !cel.Respawn || cel.RespawnMode != "always" ||
		cel.MinUptime != 10*time.Second || cel.GracefulTimeout != 600*time.Second || !cel.StopChildren || cel.Priority != -1000 ||
		cel.MaxRetry != 3 || !slices.Equal(cel.ExitCodes, []int{0}) || cel.Flapping.Attempts != 0 || !cel.CopyEnv {
		t.Errorf("celery %+v", cel)
	}
	if cel.Stdout.Class != "file" || cel.Stdout.Filename != "/var/log/celery/worker.log" || cel.Stdout.MaxBytes != 50<<20 || cel.Stdout.BackupCount != 10 ||
		cel.Stderr.Filename != "/var/log/celery/worker.err" {
		t.Errorf("celery streams %+v %+v", cel.Stdout, cel.Stderr)
	}
	for _, kv := range []string{"DJANGO_SETTINGS_MODULE=proj.settings", "LANG=C.UTF-8", "SUPERVISOR_ENABLED=1", "SUPERVISOR_SERVER_URL=unix:///var/run/supervisor.sock",
		"SUPERVISOR_GROUP_NAME=celery", "SUPERVISOR_PROCESS_NAME=celery", "CIRCLED_WATCHER=celery", "HOME=/var/www", "USER=www", "PATH=/usr/bin:/bin"} {
		if !slices.Contains(cel.Env, kv) {
			t.Errorf("celery env lacks %s: %v", kv, cel.Env)
		}
	}
	web := watcherByNameT(t, c, "web")
	if web.NumProcesses != 4 || web.WIDOffset != 0 || web.WIDWidth != 2 || web.Priority != -999 || !web.RedirectStderr ||
		!slices.Equal(web.ProcessNames, []string{"web_01", "web_02", "web_03", "web_04"}) ||
		web.Argv[len(web.Argv)-1] != "127.0.0.1:80"+WIDToken ||
		web.Stdout.Filename != "/var/log/web/web-"+WIDToken+".log" || web.Stdout.MaxBytes != 10<<20 || web.Stdout.BackupCount != 3 {
		t.Errorf("web %+v", web)
	}
	if !slices.Contains(web.Env, "SUPERVISOR_PROCESS_NAME=web_"+WIDToken) {
		t.Errorf("web env %v", web.Env)
	}
	// supervisord's 1000 starts after the default 999.
	if c.Watchers[0].Name != "web" || c.Watchers[1].Name != "celery" {
		t.Errorf("order %s %s", c.Watchers[0].Name, c.Watchers[1].Name)
	}
}

func TestSupervisordAllKeys(t *testing.T) {
	c := loadSV(t, "testdata/supervisord/allkeys/supervisord.conf")
	here, _ := filepath.Abs("testdata/supervisord/allkeys")
	d := c.Daemon
	if d.Socket != here+"/run/supervisor.sock" || d.SocketMode != 0o770 || d.LogLevel != "debug" || d.LogfileMaxBytes != 1<<20 || d.LogfileBackups != 1 ||
		d.Umask != 0o027 || c.Supervisord != (SupervisordSettings{Identifier: "supervisor-test", MinFDs: 2048, MinProcs: 300,
		InetHTTP: InetHTTP{Addr: "127.0.0.1:9001", Username: "admin", Password: "{SHA}40bd001563085fc35165329ea1ff5c5ecbdbbeef"}}) {
		t.Errorf("daemon %+v", d)
	}
	all := watcherByNameT(t, c, "all")
	wantArgv := []string{"/bin/echo", "all all", WIDToken, "3", "%done"}
	if !slices.Equal(all.Argv, wantArgv) {
		t.Errorf("argv %q", all.Argv)
	}
	if all.NumProcesses != 3 || all.WIDOffset != 4 || all.WIDWidth != 0 || !slices.Equal(all.ProcessNames, []string{"all-005", "all-006", "all-007"}) ||
		all.Priority != -10 || all.Autostart || all.RespawnMode != "on-failure" || !all.Respawn || all.MinUptime != 0 || all.MaxRetry != 7 ||
		!slices.Equal(all.ExitCodes, []int{0, 2, 3}) || all.StopSignal != "QUIT" || all.GracefulTimeout != 3*time.Second || all.StopChildren ||
		*all.UID != 1001 || all.WorkingDir != here || all.Umask != 0o002 {
		t.Errorf("all %+v", all)
	}
	if all.Stdout.Filename != here+"/log/all-"+WIDToken+".out" || all.Stdout.MaxBytes != 0 || all.Stdout.BackupCount != 0 {
		t.Errorf("stdout %+v", all.Stdout)
	}
	if all.Stderr.Filename != here+"/log/all_"+WIDToken+"-stderr---supervisor-test.log" || all.Stderr.MaxBytes != 2<<20 || all.Stderr.BackupCount != 1 {
		t.Errorf("stderr %+v", all.Stderr)
	}
	for _, kv := range []string{"A=1,2", "B=x y", "C=/home/op", "SHARED=from_program", "GLOBAL=g 1", "NUM=" + WIDToken} {
		if !slices.Contains(all.Env, kv) {
			t.Errorf("env lacks %s: %v", kv, all.Env)
		}
	}
	if slices.Contains(all.Env, "SUPERVISOR_PROCESS_NAME=all-"+WIDToken) {
		// %(process_num)03d in the name, %d in the command: not expressible.
		t.Errorf("SUPERVISOR_PROCESS_NAME set despite different widths")
	}
	q := watcherByNameT(t, c, "quiet")
	if q.Stdout.Class != "null" || q.Stderr.Class != "stdout" || q.Respawn || q.StopSignal != "HUP" || q.WorkingDir != "/tmp" {
		t.Errorf("quiet %+v", q)
	}
	x := watcherByNameT(t, c, "extra")
	if x.Argv[2] != "echo "+here+"/more" || x.Stdout.Class != "stdout" || x.Stderr.Class != "stdout" || x.RespawnMode != "always" || !x.Respawn {
		t.Errorf("extra %+v", x)
	}
	var ws []string
	for _, w := range c.Warnings {
		ws = append(ws, w.String())
	}
	text := strings.Join(ws, "\n")
	for _, want := range []string{"chown", "[unix_http_server] username", "delay_secs", "[supervisord] user", "stdout_capture_maxbytes", "stderr_syslog", "serverurl", "nothing-*.conf"} {
		if !strings.Contains(text, want) {
			t.Errorf("no warning about %s in:\n%s", want, text)
		}
	}
}

func TestSupervisordGroups(t *testing.T) {
	c := loadSV(t, "testdata/supervisord/groups/supervisord.conf")
	var names []string
	for _, w := range c.Watchers {
		names = append(names, w.Name)
	}
	// supervisord starts lower priorities first; circled higher first.
	want := []string{"alone", "api:slow", "workers:fast", "workers:slow"}
	if !slices.Equal(names, want) {
		t.Fatalf("watchers %v, want %v", names, want)
	}
	f := watcherByNameT(t, c, "workers:fast")
	if f.Priority != -100 || !slices.Equal(f.ProcessNames, []string{"fast_0", "fast_1"}) || f.WIDOffset != -1 || f.NumProcesses != 2 {
		t.Errorf("fast %+v", f)
	}
	if !slices.Contains(f.Env, "SUPERVISOR_GROUP_NAME=workers") || !slices.Contains(f.Env, "SUPERVISOR_PROCESS_NAME=fast_"+WIDToken) {
		t.Errorf("fast env %v", f.Env)
	}
	if s := watcherByNameT(t, c, "api:slow"); s.Priority != -5 {
		t.Errorf("api:slow priority %d", s.Priority)
	}
}

func TestPyExpand(t *testing.T) {
	vals := map[string]pyVal{"program_name": pyStr("web"), "process_num": pyNum(7), "numprocs": pyNum(3), "ENV_X": pyStr("ex")}
	for _, c := range []struct{ in, want, err string }{
		{"%(program_name)s-%(process_num)d", "web-7", ""},
		{"%(process_num)03d|%(process_num)3d|%(process_num)-3d|", "007|  7|7  |", ""},
		{"%(program_name)5s|%(program_name)-5s|%(program_name).2s|%(program_name)r", "  web|web  |we|'web'", ""},
		{"100%% %(ENV_X)s", "100% ex", ""},
		{"%(nope)s", "", "%(nope) cannot be expanded"},
		{"50%", "", "badly formatted"},
		{"%(program_name)d", "", "a number is required"},
		{"%(numprocs)x", "", "not supported"},
		{"%(program_name", "", "unclosed"},
	} {
		got, err := pyExpand(c.in, vals, nil, "k")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	tok := &widUse{}
	if got, err := pyExpand("a%(process_num)02d", vals, tok, "command"); err != nil || got != "a"+WIDToken || tok.width != 2 {
		t.Errorf("token: %q %v %+v", got, err, tok)
	}
	if _, err := pyExpand("%(process_num)d", vals, tok, "environment"); err == nil || !strings.Contains(err.Error(), "padded to 0 digits here but to 2 in command") {
		t.Errorf("width conflict: %v", err)
	}
	if _, err := pyExpand("%(process_num)3d", vals, &widUse{}, "x"); err == nil {
		t.Error("space padding accepted")
	}
}

func TestParseSVEnvironment(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []envKV
		err  bool
	}{
		{`A="1,2",B='x y',C=/usr/bin:/bin`, []envKV{{"A", "1,2"}, {"B", "x y"}, {"C", "/usr/bin:/bin"}}, false},
		{"A=1, B=2,\n  C=3", []envKV{{"A", "1"}, {"B", "2"}, {"C", "3"}}, false},
		{`K=a"b"`, []envKV{{"K", `a"b`}}, false},
		{`A=x@y`, nil, true},
		{`A=`, nil, true},
		{`A="unterminated`, nil, true},
		{``, nil, false},
	} {
		got, err := parseSVEnvironment(c.in)
		if (err != nil) != c.err || !slices.Equal(got, c.want) {
			t.Errorf("%q = %v, %v; want %v (error %t)", c.in, got, err, c.want, c.err)
		}
	}
}

func TestSupervisordErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "supervisord.conf")
	os.WriteFile(p, []byte(`[supervisord]
logfile_maxbytes=2TB
loglevl=info

[program:a]
command=/bin/x %(process_nm)s
numprocs=2
startsecs=1.5
stopasgroup=true
killasgroup=false
comand=x

[program:b:c]
command=x

[group:g]
programs=a,zz

[inet_http_server]
port=9001

[prgram:d]
`), 0o644)
	_, err := Load(p, testOptions(svEnv...))
	if err == nil {
		t.Fatal("loaded")
	}
	msg := err.Error()
	for _, want := range []string{
		p + `:2: [supervisord] logfile_maxbytes: size "2TB" is out of range (at most 1 TiB)`,
		p + `:3: [supervisord] loglevl: unknown key; did you mean "loglevel"?`,
		p + `:6: [program:a] command: %(process_nm) cannot be expanded`,
		p + `:8: [program:a] startsecs: invalid integer "1.5"`,
		p + `:10: [program:a] killasgroup: cannot set stopasgroup = true and killasgroup = false`,
		p + `:11: [program:a] comand: unknown key; did you mean "command"?`,
		p + `:13: [program:b:c]: program name: process name "b:c": ':' is not allowed`,
		p + `:17: [group:g] programs: names unknown program "zz"`,
		p + `:20: [inet_http_server] port: :9001 listens beyond loopback: a username and a password are required`,
		p + `:22: [prgram:d]: unknown section; did you mean [program:d]?`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("no error %q in:\n%s", want, msg)
		}
	}
	// numprocs > 1 needs %(process_num) in process_name, as in supervisord.
	if want := p + `:5: [program:a] process_name: %(process_num) must be present within process_name when numprocs > 1`; !strings.Contains(msg, want) {
		t.Errorf("no error %q in:\n%s", want, msg)
	}
}

func TestSupervisordIncludeRules(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d"), 0o755)
	main := filepath.Join(dir, "supervisord.conf")
	os.WriteFile(main, []byte("[unix_http_server]\nfile=run/s.sock ; here\n[supervisord]\n[include]\nfiles=d/*.conf\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "d", "a.conf"), []byte("[program:a]\ncommand=%(here)s/bin/a\n[include]\nfiles=*.x\n[supervisord]\nidentifier=from-a\n"), 0o644)
	c, err := Load(main, testOptions(svEnv...))
	if err != nil {
		t.Fatal(err)
	}
	if a := watcherByNameT(t, c, "a"); a.Argv[0] != filepath.Join(dir, "d", "bin", "a") {
		t.Errorf("%%(here)s in an included file: %q", a.Argv)
	}
	if c.Supervisord.Identifier != "from-a" {
		t.Errorf("identifier %q", c.Supervisord.Identifier)
	}
	if !slices.ContainsFunc(c.Warnings, func(w Warning) bool {
		return strings.Contains(w.String(), "includes are only followed from the main file")
	}) {
		t.Errorf("warnings %v", c.Warnings)
	}
	// circlectl reads the socket from the main file alone.
	d, err := ReadDaemon(main)
	if err != nil || d.Socket != filepath.Join(dir, "run", "s.sock") || d.SocketMode != 0o700 {
		t.Errorf("ReadDaemon = %+v, %v", d, err)
	}
	os.WriteFile(filepath.Join(dir, "d", "b.conf"), []byte("[unix_http_server]\nfile=/x.sock\n[program:a]\ncommand=x\n"), 0o644)
	_, err = Load(main, testOptions(svEnv...))
	b := filepath.Join(dir, "d", "b.conf")
	for _, want := range []string{b + ":1: [unix_http_server]: may only be in the main file", b + ":3: [program:a]: section already defined at " + filepath.Join(dir, "d", "a.conf") + ":1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no error %q in %v", want, err)
		}
	}
}

func TestSupervisordNoProcesses(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "supervisord.conf")
	os.WriteFile(p, []byte("[program:none]\ncommand=/bin/true\nnumprocs=0\nprocess_name=%(program_name)s_%(process_num)d\n"), 0o644)
	cfg, files, err := ConvertSupervisord(p, testOptions(svEnv...))
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Watchers[0]; w.NumProcesses != 0 || w.ProcessNames != nil {
		t.Fatalf("%+v", w)
	}
	out := t.TempDir()
	for _, f := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(out, f.Name)), 0o755)
		os.WriteFile(filepath.Join(out, f.Name), f.Data, 0o644)
	}
	c, err := Load(filepath.Join(out, "circled.ini"), testOptions(svEnv...))
	if err != nil || !c.Watchers[0].Equal(cfg.Watchers[0]) {
		t.Fatalf("converted: %v", err)
	}
}
