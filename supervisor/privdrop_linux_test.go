package supervisor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
	"github.com/circle-supervisor/circle/supervisor/config"
)

// Issue 12 §1: a watcher with uid runs with exactly that user's groups
// (initgroups), never circled's, and with the user's HOME, USER, LOGNAME
// and SHELL. Real users and groups, real processes; what the kernel gave
// each child is read from /proc/PID/status and /proc/PID/environ.
func TestPrivilegeDropRealUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a user and groups with useradd/groupadd and runs children as them")
	}
	for _, tool := range []string{"useradd", "userdel", "groupadd", "groupdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s to create a real user: %v", tool, err)
		}
	}
	// Processes run before the reaper starts and after it stopped, so
	// exec.Cmd.Run is safe here (see the package's test note).
	suffix := randomSuffix(t)
	grpA, grpB, grpC, grpD := "circa"+suffix, "circb"+suffix, "circc"+suffix, "circd"+suffix
	name := "circu" + suffix
	home := "/nonexistent/circle-home-" + suffix
	const shell = "/bin/false"
	for _, g := range []string{grpA, grpB, grpC, grpD} {
		adminCmd(t, "groupadd", g)
		t.Cleanup(func() { adminCmd(t, "groupdel", g) })
	}
	// Primary group A, member of B; C does not list the user.
	adminCmd(t, "useradd", "-M", "-d", home, "-s", shell, "-g", grpA, "-G", grpB, name)
	t.Cleanup(func() { adminCmd(t, "userdel", name) })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid := mustAtoi(t, u.Uid)
	gidOf := func(g string) int {
		gr, err := user.LookupGroup(g)
		if err != nil {
			t.Fatal(err)
		}
		return mustAtoi(t, gr.Gid)
	}
	a, b, c, d := gidOf(grpA), gidOf(grpB), gidOf(grpC), gidOf(grpD)
	// circled holds supplementary groups, as a root login (0 and adm) or
	// a container's PID 1 does: root and D, which lists nobody.
	saved := ownGroups(t)
	if err := syscall.Setgroups([]int{0, d}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Setgroups(saved); err != nil {
			t.Errorf("restoring the test's groups %v: %v", saved, err)
		}
	})
	// A uid that has no passwd entry.
	nouid := 4200000 + int(suffixNum(suffix)%100000)
	for {
		if _, err := user.LookupId(strconv.Itoa(nouid)); err != nil {
			break
		}
		nouid++
	}

	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const sleep = "cmd = /bin/sleep 1000\n"
	path := writeConfig(t, dir, fmt.Sprintf(`[circled]
socket = %[1]s/s.sock
graceful_timeout = 5s
[watcher:named]
%[2]suid = %[3]s
[watcher:copyenv]
%[2]suid = %[3]s
copy_env = true
[watcher:sectionenv]
%[2]suid = %[3]s
copy_env = true
[env:sectionenv]
LOGNAME = from-section
[watcher:override]
%[2]suid = %[3]s
gid = %[4]s
[watcher:numeric]
%[2]suid = %[5]d
gid = %[4]s
copy_env = true
[watcher:gidonly]
%[2]sgid = %[4]s
`, dir, sleep, name, grpC, nouid))
	// circled's own identity, which must not reach the children.
	environ := append(os.Environ(), "HOME=/circled-home", "USER=circled-user", "LOGNAME=circled-logname",
		"SHELL=/circled/shell", "CIRCLE_PRIVDROP_MARK=inherited")
	cfg, err := config.Load(path, config.Options{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}

	// circled check shows the resolved user and its groups.
	var summary strings.Builder
	if err := cfg.WriteSummary(&summary); err != nil {
		t.Fatal(err)
	}
	words := regexp.MustCompile(` +`).ReplaceAllString(summary.String(), " ")
	for _, want := range []string{
		fmt.Sprintf("user: %s (uid %d) home %s shell %s\n group: %s (gid %d)\n groups: %s\n", name, uid, home, shell, grpA, a,
			groupList(map[int]string{a: grpA, b: grpB})),
		fmt.Sprintf("user: %s (uid %d) home %s shell %s\n group: %s (gid %d)\n groups: %s\n", name, uid, home, shell, grpC, c,
			groupList(map[int]string{b: grpB, c: grpC})),
		fmt.Sprintf("user: uid %d (no passwd entry: HOME, USER, LOGNAME and SHELL are not set)\n group: %s (gid %d)\n groups: (none)\n", nouid, grpC, c),
		fmt.Sprintf("user: circled's\n group: %s (gid %d)\n groups: %s (gid %d)\n", grpC, c, grpC, c),
	} {
		if !strings.Contains(words, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary.String())
		}
	}

	s := startPrivdropSup(t, cfg, environ)
	userEnv := map[string]string{"HOME": home, "USER": name, "LOGNAME": name, "SHELL": shell}
	for _, tc := range []struct {
		watcher  string
		uid, gid int
		groups   []int
		env      map[string]string // "" = must be absent
	}{
		{"named", uid, a, []int{a, b}, userEnv},
		{"copyenv", uid, a, []int{a, b}, with(userEnv, "CIRCLE_PRIVDROP_MARK", "inherited")},
		{"sectionenv", uid, a, []int{a, b}, with(userEnv, "LOGNAME", "from-section")},
		{"override", uid, c, []int{b, c}, userEnv},
		{"numeric", nouid, c, []int{}, map[string]string{"HOME": "", "USER": "", "LOGNAME": "", "SHELL": "", "CIRCLE_PRIVDROP_MARK": "inherited"}},
		{"gidonly", 0, c, []int{c}, map[string]string{"HOME": "", "USER": ""}},
	} {
		t.Run(tc.watcher, func(t *testing.T) {
			pid := privdropPid(t, s, tc.watcher)
			st := procStatus(t, pid)
			if want := strings.Repeat(strconv.Itoa(tc.uid)+" ", 4); st["Uid"] != want[:len(want)-1] {
				t.Errorf("Uid: %q, want real, effective, saved and fs uid %d", st["Uid"], tc.uid)
			}
			if want := strings.Repeat(strconv.Itoa(tc.gid)+" ", 4); st["Gid"] != want[:len(want)-1] {
				t.Errorf("Gid: %q, want real, effective, saved and fs gid %d", st["Gid"], tc.gid)
			}
			var got []int
			for _, f := range strings.Fields(st["Groups"]) {
				got = append(got, mustAtoi(t, f))
			}
			slices.Sort(got)
			if got == nil {
				got = []int{}
			}
			if !slices.Equal(got, tc.groups) {
				t.Errorf("Groups: %v, want exactly %v (circled has %v)", got, tc.groups, ownGroups(t))
			}
			env := procEnviron(t, pid)
			for k, want := range tc.env {
				if v, ok := env[k]; want == "" && ok || want != "" && v != want {
					t.Errorf("%s=%q (set %v), want %q", k, v, ok, want)
				}
			}
		})
	}

	// A numeric uid without passwd entry and without gid does not load.
	bad := writeConfig(t, t.TempDir(), fmt.Sprintf("[watcher:x]\ncmd = /bin/true\nuid = %d\n", nouid))
	_, err = config.Load(bad, config.Options{Environ: environ})
	var ce *config.Error
	if !errors.As(err, &ce) || ce.File != bad || ce.Line != 3 || ce.Key != "[watcher:x] uid" {
		t.Errorf("numeric uid %d without passwd entry and gid: error %v, want a config error at %s:3 key uid", nouid, err, bad)
	}
}

func startPrivdropSup(t *testing.T, cfg *config.Config, environ []string) *Supervisor {
	t.Helper()
	s := New(cfg, Options{Spawner: runReaper(t), Environ: environ, Stdout: discardW{}, Stderr: discardW{}})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
			s.Close()
		})
	})
	return s
}

// privdropPid waits for the watcher's one process. Its pid is recorded
// after exec, so its credentials are final.
func privdropPid(t *testing.T, s *Supervisor, name string) int {
	t.Helper()
	var pids []int
	testhelper.Eventually(t, 10*time.Second, name+" running (state "+state(s, name)+")", func() bool {
		pids, _ = s.PIDs(name)
		return len(pids) == 1 && pids[0] > 0
	})
	return pids[0]
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m
}

func procEnviron(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			m[k] = v
		}
	}
	return m
}

func ownGroups(t *testing.T) []int {
	g, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func with(m map[string]string, k, v string) map[string]string {
	c := map[string]string{k: v}
	for k2, v2 := range m {
		if _, ok := c[k2]; !ok {
			c[k2] = v2
		}
	}
	return c
}

// groupList renders groups the way circled check does: by gid.
func groupList(names map[int]string) string {
	var ids []int
	for id := range names {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s (gid %d)", names[id], id))
	}
	return strings.Join(parts, ", ")
}

// adminCmd runs a user-database tool. Another process may hold the
// database's lock for a moment, so a failure is retried until a deadline.
func adminCmd(t *testing.T, args ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func suffixNum(s string) uint64 {
	n, _ := strconv.ParseUint(s, 16, 64)
	return n
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
