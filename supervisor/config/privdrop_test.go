//go:build !windows

package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// circled's own environment in these tests: a root login.
var rootEnv = []string{"PATH=/bin", "HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash", "KEEP=1"}

func intp(n int) *int { return &n }

// A uid is resolved completely at load: primary group, initgroups-style
// supplementary groups, and the user's HOME/USER/LOGNAME/SHELL.
func TestUserCredentials(t *testing.T) {
	tarekEnv := map[string]string{"HOME": "/home/tarek", "USER": "tarek", "LOGNAME": "tarek", "SHELL": "/bin/zsh"}
	for _, tc := range []struct {
		name, keys string
		uid, gid   *int
		groups     []int // nil = neither uid nor gid
		user       string
		env        map[string]string // "" = must be absent
	}{
		{name: "no uid or gid keeps circled's credentials", keys: "",
			env: map[string]string{"HOME": "", "USER": ""}},
		{name: "user by name: its group plus the groups listing it", keys: "uid = tarek",
			uid: intp(1001), gid: intp(1001), groups: []int{10, 33, 1001}, user: "tarek", env: tarekEnv},
		{name: "user by number with a passwd entry", keys: "uid = 1001",
			uid: intp(1001), gid: intp(1001), groups: []int{10, 33, 1001}, user: "tarek", env: tarekEnv},
		{name: "gid replaces the passwd group and stays in the list", keys: "uid = tarek\ngid = ssl-cert",
			uid: intp(1001), gid: intp(111), groups: []int{10, 33, 111}, user: "tarek", env: tarekEnv},
		{name: "gid that is also a listed group", keys: "uid = tarek\ngid = 10",
			uid: intp(1001), gid: intp(10), groups: []int{10, 33}, user: "tarek", env: tarekEnv},
		{name: "root by number", keys: "uid = 0",
			uid: intp(0), gid: intp(0), groups: []int{0}, user: "root",
			env: map[string]string{"HOME": "/root", "USER": "root", "LOGNAME": "root", "SHELL": "/bin/bash"}},
		{name: "numeric uid without passwd entry: no supplementary groups, no invented HOME", keys: "uid = 4242\ngid = 111",
			uid: intp(4242), gid: intp(111), groups: []int{}, env: map[string]string{"HOME": "", "USER": "", "LOGNAME": "", "SHELL": ""}},
		{name: "gid alone: just that group, circled's user", keys: "gid = www",
			gid: intp(33), groups: []int{33}, env: map[string]string{"HOME": "", "USER": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := mustLoad(t, "[watcher:a]\ncmd = x\n"+tc.keys+"\n", rootEnv...)
			w := c.Watchers[0]
			if !reflect.DeepEqual(w.UID, tc.uid) || !reflect.DeepEqual(w.GID, tc.gid) {
				t.Errorf("uid %v gid %v, want %v %v", deref(w.UID), deref(w.GID), deref(tc.uid), deref(tc.gid))
			}
			if !reflect.DeepEqual(w.Groups, tc.groups) {
				t.Errorf("groups %#v, want %#v", w.Groups, tc.groups)
			}
			switch {
			case tc.user == "" && w.User != nil:
				t.Errorf("user %+v, want none", w.User)
			case tc.user != "" && (w.User == nil || w.User.Name != tc.user):
				t.Errorf("user %+v, want %s", w.User, tc.user)
			}
			env := envOf(w)
			for k, want := range tc.env {
				if got, ok := env[k]; want == "" && ok || want != "" && got != want {
					t.Errorf("%s = %q (set %v), want %q", k, got, ok, want)
				}
			}
		})
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// copy_env: the user's four variables replace circled's; everything else
// is inherited. An env section's value wins over both.
func TestUserEnvironment(t *testing.T) {
	c, _ := mustLoad(t, `[watcher:copy]
cmd = x
uid = tarek
copy_env = true
[watcher:sections]
cmd = x
uid = tarek
copy_env = true
[watcher:nopasswd]
cmd = x
uid = 4242
gid = 4242
copy_env = true
[watcher:asroot]
cmd = x
gid = wheel
copy_env = true
[env:sections]
HOME = /srv/app
LOGNAME = app
home = lower-case is another variable
`, rootEnv...)
	for _, tc := range []struct {
		watcher string
		want    map[string]string // "" = must be absent
	}{
		{"copy", map[string]string{"HOME": "/home/tarek", "USER": "tarek", "LOGNAME": "tarek", "SHELL": "/bin/zsh", "KEEP": "1", "PATH": "/bin"}},
		{"sections", map[string]string{"HOME": "/srv/app", "USER": "tarek", "LOGNAME": "app", "SHELL": "/bin/zsh", "home": "lower-case is another variable"}},
		// circled's HOME=/root must not reach a uid it does not describe.
		{"nopasswd", map[string]string{"HOME": "", "USER": "", "LOGNAME": "", "SHELL": "", "KEEP": "1"}},
		// gid alone does not change the user.
		{"asroot", map[string]string{"HOME": "/root", "USER": "root", "LOGNAME": "root", "SHELL": "/bin/bash"}},
	} {
		env := envOf(watcher(t, c, tc.watcher))
		for k, want := range tc.want {
			if got, ok := env[k]; want == "" && ok || want != "" && got != want {
				t.Errorf("%s: %s = %q (set %v), want %q", tc.watcher, k, got, ok, want)
			}
		}
	}
}

// A numeric uid without a passwd entry has no primary group: loading
// fails at the uid key instead of falling back to circled's group.
func TestNumericUIDWithoutPasswdNeedsGID(t *testing.T) {
	_, err, dir := loadString(t, "[watcher:a]\ncmd = x\n\nuid = 4242\n")
	if err == nil {
		t.Fatal("loaded a numeric uid without passwd entry and without gid")
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	if ce.File != filepath.Join(dir, "circled.ini") || ce.Line != 4 || ce.Key != "[watcher:a] uid" {
		t.Errorf("error at %s:%d key %q, want circled.ini:4 key \"[watcher:a] uid\"", ce.File, ce.Line, ce.Key)
	}
	if !strings.Contains(ce.Msg, "4242") || !strings.Contains(ce.Msg, "gid") {
		t.Errorf("message %q should name the uid and ask for gid", ce.Msg)
	}
	if strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("want exactly one error, got:\n%v", err)
	}
}

func TestUserSummary(t *testing.T) {
	c, _ := mustLoad(t, `[watcher:named]
cmd = x
uid = tarek
gid = ssl-cert
[watcher:nopasswd]
cmd = x
uid = 4242
gid = 4343
[watcher:gidonly]
cmd = x
gid = www
`)
	var b strings.Builder
	if err := c.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	// The tabwriter's column width depends on the watcher: compare words.
	out := regexp.MustCompile(` +`).ReplaceAllString(b.String(), " ")
	for _, want := range []string{
		"user: tarek (uid 1001) home /home/tarek shell /bin/zsh\n group: ssl-cert (gid 111)\n groups: wheel (gid 10), www (gid 33), ssl-cert (gid 111)\n",
		"user: uid 4242 (no passwd entry: HOME, USER, LOGNAME and SHELL are not set)\n group: gid 4343\n groups: (none)\n",
		"user: circled's\n group: www (gid 33)\n groups: www (gid 33)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// Groups are part of what a process is; group names are not.
func TestEqualGroups(t *testing.T) {
	c, _ := mustLoad(t, "[watcher:a]\ncmd = x\nuid = tarek\n")
	a := c.Watchers[0]
	b := *a
	b.GroupNames = map[int]string{10: "renamed"}
	if !a.Equal(&b) {
		t.Error("a renamed group makes the watcher differ")
	}
	b = *a
	b.Groups = slices.DeleteFunc(slices.Clone(a.Groups), func(g int) bool { return g == 33 })
	if a.Equal(&b) {
		t.Error("a lost supplementary group is not a change")
	}
}

// The default lookups read the real user database: root is uid 0, its
// primary group is not repeated among its memberships.
func TestDefaultLookupRoot(t *testing.T) {
	u, err := defaultLookupUserID(0)
	if err != nil {
		t.Skipf("no user database entry for uid 0 here: %v", err)
	}
	if u.UID != 0 || u.Name == "" || u.Home == "" || u.Shell == "" {
		t.Errorf("root = %+v", u)
	}
	if slices.Contains(u.Groups, u.GID) {
		t.Errorf("root's groups %v repeat its primary group %d", u.Groups, u.GID)
	}
	byName, err := defaultLookupUser(u.Name)
	if err != nil || !reflect.DeepEqual(byName, u) {
		t.Errorf("by name: %+v, %v; by id %+v", byName, err, u)
	}
}

func TestLoginShell(t *testing.T) {
	p := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(p, []byte("# comment\nroot:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:\nfish:x:1001:1001::/home/fish:/usr/bin/fish\nfish:x:1002:1002::/home/fish2:/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := passwdFile
	passwdFile = p
	t.Cleanup(func() { passwdFile = old })
	for _, tc := range []struct{ name, uid, want string }{
		{"root", "0", "/bin/bash"},
		{"app", "1000", "/bin/sh"}, // empty field
		{"fish", "1001", "/usr/bin/fish"},
		{"fish", "1002", "/bin/false"}, // the entry of that uid
		{"ldapuser", "5000", "/bin/sh"},
	} {
		if got := loginShell(tc.name, tc.uid); got != tc.want {
			t.Errorf("loginShell(%s, %s) = %q, want %q", tc.name, tc.uid, got, tc.want)
		}
	}
}
