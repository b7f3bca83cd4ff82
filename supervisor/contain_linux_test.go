package supervisor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// killReparented kills this test process's children running cmdline
// (a setsid'd process that re-parented to it, the reaper being a
// subreaper, when nothing contained it).
func killReparented(cmdline string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		st, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ") != cmdline {
			continue
		}
		if i := strings.LastIndexByte(string(st), ')'); i > 0 {
			if f := strings.Fields(string(st)[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// status shows, per process, how many processes run beyond its main
// one: with a cgroup per process, every one of them (a setsid'd daemon
// too); without, its process group and its tree of children.
func TestStatusDescendants(t *testing.T) {
	for _, mode := range []struct {
		name    string
		noCG    string
		want    int
		cgroups bool
	}{{"cgroups", "", 2, true}, {"pgroups", "1", 1, false}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Setenv(NoCgroupsEnv, mode.noCG)
			dir := t.TempDir()
			path := writeConfig(t, dir, "[watcher:fam]\ncmd = sh -c 'setsid -f sleep 1001; sleep 1002 & exec sleep 1003'\n")
			s, stop := newSup(t, path)
			t.Cleanup(func() { killReparented("sleep 1001") })
			defer func() {
				killReparented("sleep 1001") // holds the output pipe: stop would wait 2 s
				stop()
			}()
			if mode.cgroups && s.cg == nil {
				t.Skip("SKIP: no writable cgroup v2 here")
			}
			var got int
			testhelper.Eventually(t, 10*time.Second, "descendants counted", func() bool {
				st, _, err := s.Status([]string{"fam"})
				if err != nil || len(st) != 1 || len(st[0].Processes) != 1 || st[0].Processes[0].State != "running" {
					return false
				}
				s.CountDescendants(st)
				got = st[0].Processes[0].Descendants
				return got == mode.want
			})
			if mode.cgroups {
				if m, _ := filepath.Glob(filepath.Join(s.cg.Path(), "fam", "1.*")); len(m) != 1 {
					t.Fatalf("cgroups of fam.1: %v", m)
				}
			}
		})
	}
}
