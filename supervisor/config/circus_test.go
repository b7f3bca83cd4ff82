package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const circusFixtures = "../../../shared/peer-configs/circus"

// TestCircusFixtures loads every circus configuration file shipped in
// ../shared: each loads, or fails for the reason asserted here.
func TestCircusFixtures(t *testing.T) {
	if _, err := os.Stat(circusFixtures); err != nil {
		t.Skipf("circus fixtures not available at %s (they live outside the repo, in ../shared): %v", circusFixtures, err)
	}
	// Files that must fail, and a substring of the reason.
	failures := map[string]string{
		"examples/example10.ini":                   "[watcher:vars] cmd: unknown variable $(circus.env.myvar)",
		"tests-config/hooks.ini":                   "[watcher:foo] cmd: required key is missing",
		"tests-config/find_hook_in_pythonpath.ini": "[watcher:foo] cmd: required key is missing",
		"tests-config/issue137.ini":                `[watcher:my_app] uid: user "me" not found`,
		"tests-config/issue567.ini":                "[watcher:watcher1] cmd: unknown variable $(circus.env.GRAVITY)",
		"tests-config/issue395.ini":                `[watcher:web] args: unknown socket "web" in $(circus.sockets.web) (no [socket:web] section)`,
	}
	const path = "/usr/local/bin:/usr/bin:/bin"
	opts := testOptions("PATH="+path, "HOME=/home/test")
	loaded := map[string]*Config{}
	n := 0
	err := filepath.WalkDir(circusFixtures, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".ini") {
			return err
		}
		n++
		rel := filepath.ToSlash(strings.TrimPrefix(p, circusFixtures+"/"))
		t.Run(rel, func(t *testing.T) {
			c, err := Load(p, opts)
			if want, ok := failures[rel]; ok {
				if err == nil {
					t.Fatalf("loaded; want an error containing %q", want)
				}
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q; want it to contain %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, w := range c.Warnings {
				if w.File == "" || w.Line == 0 || w.Key == "" {
					t.Errorf("warning without file, line or key: %+v", w)
				}
			}
			loaded[rel] = c
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 60 {
		t.Errorf("only %d fixtures found", n)
	}

	get := func(file, name string) *Watcher {
		t.Helper()
		c := loaded[file]
		if c == nil {
			t.Fatalf("%s did not load", file)
		}
		return watcher(t, c, name)
	}

	// tests/test_config.py expectations, as listed in the README.
	t.Run("env_section expectations", func(t *testing.T) {
		w1 := envOf(get("tests-config/env_section.ini", "watcher1"))
		w2 := envOf(get("tests-config/env_section.ini", "watcher2"))
		for _, env := range []map[string]string{w1, w2} {
			if env["PATH"] != path+":/bin" || env["TEST1"] != "test1" || env["TEST2"] != "test2" || env["TEST3"] != "test3" {
				t.Errorf("env = %v", env)
			}
		}
		if w1["CAKE"] != "lie" || w2["LIE"] != "cake" || w1["LIE"] != "" || w2["CAKE"] != "" {
			t.Errorf("watcher1 %v, watcher2 %v", w1, w2)
		}
	})
	t.Run("copy_env", func(t *testing.T) {
		if env := envOf(get("tests-config/copy_env.ini", "watcher2")); env["HOME"] != "/home/test" || env["LIE"] != "cake" {
			t.Errorf("env = %v", env)
		}
		if env := envOf(get("tests-config/copy_env.ini", "watcher1")); env["HOME"] != "" {
			t.Errorf("watcher1 got circled's env without copy_env: %v", env)
		}
	})
	t.Run("env_sensecase", func(t *testing.T) {
		env := envOf(get("tests-config/env_sensecase.ini", "webapp"))
		if env["http_proxy"] != "http://localhost:8080" || env["HTTPS_PROXY"] != "http://localhost:8043" || env["FunKy_soUl"] != "scorpio" {
			t.Errorf("env = %v", env)
		}
	})
	t.Run("issue442", func(t *testing.T) {
		w := get("tests-config/issue442.ini", "my_app")
		if w.UID == nil || *w.UID != 1001 || w.GID == nil || *w.GID != 0 {
			t.Errorf("uid %v gid %v, want tarek (1001) and root (0)", w.UID, w.GID)
		}
		if env := envOf(w); env["circus_gid"] != "root" || env["circus_uid"] != "tarek" {
			t.Errorf("env = %v", env)
		}
	})
	t.Run("expand_vars", func(t *testing.T) {
		w := get("tests-config/expand_vars.ini", "echo")
		if w.Stdout.Class != "file" || w.Stdout.Filename != "/tmp/echo.log" || w.Stdout.MaxBytes != 10485760 {
			t.Errorf("stdout = %+v", w.Stdout)
		}
		if !slices.Equal(w.Argv, []string{"echo", "hi"}) {
			t.Errorf("argv = %q", w.Argv)
		}
	})
	t.Run("issue594", func(t *testing.T) {
		w := get("tests-config/issue594.ini", "my_app")
		if w.StopSignal != "INT" || !w.StopChildren || w.GracefulTimeout != 30*time.Second {
			t.Errorf("%+v", w)
		}
	})
	t.Run("issue1088", func(t *testing.T) {
		if w := get("tests-config/issue1088.ini", "my_app"); w.GracefulTimeout != 25500*time.Millisecond {
			t.Errorf("graceful_timeout = %v", w.GracefulTimeout)
		}
	})
	t.Run("issue665 shell", func(t *testing.T) {
		if w := get("tests-config/issue665.ini", "web1"); !slices.Equal(w.Argv, []string{"/bin/sh", "-c", "foo --fd"}) {
			t.Errorf("argv = %q", w.Argv)
		}
		if w := get("tests-config/issue665.ini", "web3"); !slices.Equal(w.Argv, []string{"foo", "--fd"}) {
			t.Errorf("argv = %q", w.Argv)
		}
	})
	t.Run("issue680 priority", func(t *testing.T) {
		c := loaded["tests-config/issue680.ini"]
		if c == nil || len(c.Watchers) != 2 || c.Watchers[0].Name != "test2" || c.Watchers[0].Priority != 20 {
			t.Errorf("watchers = %+v", c)
		}
	})
	t.Run("circus.ini daemon", func(t *testing.T) {
		c := loaded["tests-config/circus.ini"]
		dir, _ := filepath.Abs(filepath.Join(circusFixtures, "tests-config"))
		if c.Daemon.Pidfile != filepath.Join(dir, "pidfile") || c.Daemon.Logfile != filepath.Join(dir, "logoutput") || c.Daemon.LogLevel != "debug" {
			t.Errorf("daemon = %+v", c.Daemon)
		}
	})
	t.Run("include", func(t *testing.T) {
		c := loaded["tests-config/include.ini"]
		var names []string
		for _, w := range c.Watchers {
			names = append(names, w.Name)
		}
		if !slices.Equal(names, []string{"bar", "barbaz", "foo", "foobar"}) || len(c.Files) != 5 {
			t.Errorf("watchers %q files %q", names, c.Files)
		}
		if c := loaded["tests-config/include_dir.ini"]; len(c.Watchers) != 2 {
			t.Errorf("include_dir.ini: %d watchers", len(c.Watchers))
		}
	})
	t.Run("multiple_wildcard", func(t *testing.T) {
		c := loaded["tests-config/multiple_wildcard.ini"]
		if len(c.Watchers) != 3 {
			t.Errorf("%d watchers", len(c.Watchers))
		}
		// [env:server] in the main file, then in subsubdir1/barbaz.ini: later wins.
		if env := envOf(get("tests-config/multiple_wildcard.ini", "server")); env["INI"] != "public.ini" {
			t.Errorf("INI = %q", env["INI"])
		}
	})
	t.Run("wid", func(t *testing.T) {
		if w := get("examples/example4.ini", "dummy"); !slices.Equal(w.Argv, []string{"python", "-u", "dummy_fly.py", WIDToken}) {
			t.Errorf("argv = %q", w.Argv)
		}
		if w := get("examples/uwsgi_lossless_reload.ini", "web"); w.Argv[len(w.Argv)-1] != "127.0.0.1:809"+WIDToken || w.StopSignal != "QUIT" {
			t.Errorf("argv = %q", w.Argv)
		}
	})
}
