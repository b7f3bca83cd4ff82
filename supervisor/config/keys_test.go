package config

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/keys.md")

// fieldType resolves a KeyInfo.Field path in typ.
func fieldType(typ reflect.Type, path string) (reflect.Type, bool) {
	for _, name := range strings.Split(path, ".") {
		f, ok := typ.FieldByName(name)
		if !ok {
			return nil, false
		}
		typ = f.Type
	}
	return typ, true
}

// Every field of Daemon and Watcher is set by a key of the tables (or is
// computed from several: listed here), and every Field names a real field:
// a new field cannot be left out of the table.
func TestKeyTablesCoverFields(t *testing.T) {
	check := func(typ reflect.Type, keys []KeyInfo, computed []string) {
		covered := map[string]bool{}
		for _, k := range keys {
			if k.Circus || k.Field == "" {
				continue
			}
			if _, ok := fieldType(typ, k.Field); !ok {
				t.Errorf("%s: key %s: no field %s", typ, k.Name, k.Field)
			}
			covered[strings.Split(k.Field, ".")[0]] = true
		}
		for i := range typ.NumField() {
			if n := typ.Field(i).Name; !covered[n] && !slices.Contains(computed, n) {
				t.Errorf("%s.%s is set by no key of the table", typ, n)
			}
		}
	}
	supD, supW := SupervisordKeys()
	check(reflect.TypeOf(Daemon{}), DaemonKeys(), nil)
	check(reflect.TypeOf(SupervisordSettings{}), supD, nil)
	check(reflect.TypeOf(Watcher{}), append(WatcherKeys(), supW...), []string{
		"Name", "File", "Line", // the section
		"Argv",                         // cmd, args, shell
		"Env",                          // env sections, copy_env, copy_path, uid
		"Groups", "User", "GroupNames", // uid, gid
		"Respawn", // respawn (RespawnMode != "never")
		"Sockets", // use_sockets, $(circle.sockets.NAME) in cmd and args
	})
	for _, k := range append(DaemonKeys(), WatcherKeys()...) {
		if k.Name != strings.ToLower(k.Name) {
			t.Errorf("key %s is not lower case", k.Name)
		}
		if k.Default != "" && k.Note != "" && strings.Contains(k.Note, "default") {
			t.Errorf("key %s: a Default and a Note about the default", k.Name)
		}
	}
}

// A reload updates a watcher in place when only live keys changed, and
// restarts it for any other change (supervisor's sameProcess).
func TestEqualExceptLive(t *testing.T) {
	base, _ := mustLoad(t, "[watcher:a]\ncmd = x\n")
	w := base.Watchers[0]
	for _, change := range []func(*Watcher){
		func(c *Watcher) { c.NumProcesses = 7 },
		func(c *Watcher) { c.GracefulTimeout = time.Hour },
		func(c *Watcher) { c.StopSignal, c.StopChildren = "INT", false },
		func(c *Watcher) {
			c.Respawn, c.MaxRetry, c.Autostart, c.Priority, c.Critical = false, 9, false, 3, true
		},
		func(c *Watcher) { c.WarmupDelay, c.MinUptime, c.BackoffMax = 1, 2, 3 },
		func(c *Watcher) { c.Flapping = Flapping{} },
		func(c *Watcher) { c.File, c.Line = "/elsewhere.ini", 99 },
		func(c *Watcher) { c.RespawnMode, c.Respawn, c.ExitCodes = "on-failure", true, []int{0, 2} },
		func(c *Watcher) { c.ReloadSignal, c.DependsOn = "HUP", []Dependency{{"db", "ready"}} },
	} {
		c := *w
		change(&c)
		if !w.EqualExceptLive(&c) {
			t.Errorf("a live change restarts: %+v", c)
		}
	}
	for _, change := range []func(*Watcher){
		func(c *Watcher) { c.Argv = []string{"y"} },
		func(c *Watcher) { c.Env = []string{"A=1"} },
		func(c *Watcher) { c.WorkingDir = "/tmp" },
		func(c *Watcher) { c.Stdout.FileMode = 0o600 },
		func(c *Watcher) { c.RedirectStderr = true },
		func(c *Watcher) { c.Umask = 0o22 },
		func(c *Watcher) { c.Singleton = true },
		func(c *Watcher) { c.Ready.TCP = ":80" },
		func(c *Watcher) { c.Ready.Notify, c.Watchdog = true, time.Second },
		func(c *Watcher) { c.Health.Retries = 9 },
	} {
		c := *w
		change(&c)
		if w.EqualExceptLive(&c) {
			t.Errorf("a change that needs a restart is applied live: %+v", c)
		}
	}
}

// testdata/keys.md is the generated key reference (go test -run
// TestKeyTablesMarkdown -update rewrites it).
func TestKeyTablesMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteKeyTables(&b); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("testdata/keys.md", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/keys.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("testdata/keys.md is stale: go test ./supervisor/config -run TestKeyTablesMarkdown -update")
	}
}
