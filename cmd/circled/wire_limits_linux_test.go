//go:build linux

package main

// Issue 16 §4 against the real circled: a watcher's limit keys hold its
// processes (cgroup v1 controllers: the CI machines' hybrid layout).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/limits"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// v1Cgroup is pid's cgroup directory in v1 controller ctrl, or "".
func v1Cgroup(pid int, ctrl string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && strings.Contains(","+parts[1]+",", ","+ctrl+",") {
			return filepath.Join("/sys/fs/cgroup", ctrl, parts[2])
		}
	}
	return ""
}

func needLimits(t *testing.T, l limits.Limits, ctrl string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("resource limits need root (cgroup writes)")
	}
	if err := limits.Available(l); err != nil {
		t.Skipf("limits not enforceable here: %v", err)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctrl)); err != nil {
		t.Skipf("no cgroup v1 %s controller (this test reads v1 files): %v", ctrl, err)
	}
}

// pids_max = 20: a fork loop of 60 sleeps gets at most 20 tasks.
func TestWireLimitsPidsMax(t *testing.T) {
	needLimits(t, limits.Limits{PidsMax: 20}, "pids")
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the fork loop is a Python script")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "forker.py")
	os.WriteFile(script, []byte(`import os, time
n = 0
for i in range(60):
    try:
        if os.fork() == 0:
            time.sleep(300)
            os._exit(0)
        n += 1
    except OSError:
        pass
print("forked", n, flush=True)
time.sleep(300)
`), 0o644)
	p := startCircled(t, dir, `[watcher:forker]
cmd = `+py+` `+script+`
pids_max = 20
`)
	p.up()
	var pid int
	testhelper.Eventually(t, waitTimeout, "forker running", func() bool {
		ps := p.pidsOf("forker")
		if len(ps) == 1 {
			pid = ps[0]
		}
		return pid != 0
	})
	cg := v1Cgroup(pid, "pids")
	if cg == "" || !strings.Contains(cg, "forker") {
		t.Fatalf("forker (pid %d) pids cgroup %q: not a limit cgroup of circled's", pid, cg)
	}
	testhelper.Eventually(t, waitTimeout, "the fork loop done", func() bool {
		return strings.Contains(p.mustCtl("logs", "forker"), "forked")
	})
	max, _ := os.ReadFile(filepath.Join(cg, "pids.max"))
	cur, _ := os.ReadFile(filepath.Join(cg, "pids.current"))
	n, err := strconv.Atoi(strings.TrimSpace(string(cur)))
	if strings.TrimSpace(string(max)) != "20" || err != nil || n > 20 || n < 2 {
		t.Fatalf("pids.max %q pids.current %q", max, cur)
	}
	out, _ := exec.Command("pgrep", "-c", "-P", strconv.Itoa(pid)).Output()
	kids, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	t.Logf("pids.current %d, the forker's children %d (60 forks tried)", n, kids)
	if kids > 19 {
		t.Fatalf("%d children, pids_max 20 allows the forker and 19", kids)
	}
	p.quit()
	// The watcher's limit cgroups go with it (parent included).
	if _, err := os.Stat(filepath.Dir(cg)); err == nil {
		t.Errorf("%s left after circled quit", filepath.Dir(cg))
	}
}

// memory_max holds a memory hog: the kernel kills it (signal KILL).
func TestWireLimitsMemoryMax(t *testing.T) {
	needLimits(t, limits.Limits{MemoryMax: 64 << 20}, "memory")
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the memory hog is a Python one-liner")
	}
	dir := t.TempDir()
	p := startCircled(t, dir, `[watcher:hog]
cmd = `+py+` -c "import time; b = [bytearray(1 << 20) for _ in range(512)]; print('survived', flush=True); time.sleep(300)"
memory_max = 64MB
respawn = false
`)
	p.up()
	testhelper.Eventually(t, waitTimeout, "the hog to end", func() bool {
		out := p.mustCtl("status", "--json", "hog")
		var st ctl.Status
		if json.Unmarshal([]byte(out), &st) != nil || len(st.Watchers) != 1 || len(st.Watchers[0].Processes) == 0 {
			return false
		}
		ex := st.Watchers[0].Processes[0].LastExit
		if ex.None {
			return false
		}
		if ex.Signal != "KILL" {
			t.Fatalf("hog ended with %+v, want signal KILL; logs:\n%s", ex, p.mustCtl("logs", "hog"))
		}
		return true
	})
	if strings.Contains(p.mustCtl("logs", "hog"), "survived") {
		t.Fatalf("the hog allocated 512 MB under memory_max = 64MB")
	}
	p.quit()
}

// lastExit is slot 1's last exit of watcher name in status --json, and
// whether it has one.
func (p *circledProc) lastExit(name string) (ctl.Exit, bool) {
	p.t.Helper()
	var st ctl.Status
	if json.Unmarshal([]byte(p.mustCtl("status", "--json", name)), &st) != nil || len(st.Watchers) != 1 || len(st.Watchers[0].Processes) == 0 {
		return ctl.Exit{}, false
	}
	ex := st.Watchers[0].Processes[0].LastExit
	return ex, !ex.None
}

// memory_max = 32MB: a process that allocates until it is stopped is
// killed by the kernel's OOM killer, and status says oom (not only
// signal KILL); a SIGKILL from elsewhere, under the same limit, is not
// an OOM kill.
func TestWireLimitsOOMInStatus(t *testing.T) {
	needLimits(t, limits.Limits{MemoryMax: 32 << 20}, "memory")
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the memory hog is a Python one-liner")
	}
	dir := t.TempDir()
	// b'x' * n writes every page (a bytearray could be untouched zero
	// pages); bounded at 2 GB in case the limit does not hold.
	p := startCircled(t, dir, `[watcher:hog]
cmd = `+py+` -c "import time; b = [b'x' * (1 << 20) for _ in range(2048)]; print('survived', flush=True); time.sleep(300)"
memory_max = 32MB
respawn = false

[watcher:quiet]
cmd = sleep 300
memory_max = 32MB
`)
	p.up()
	var ex ctl.Exit
	testhelper.Eventually(t, waitTimeout, "the hog to end", func() bool {
		var ok bool
		ex, ok = p.lastExit("hog")
		return ok
	})
	if !ex.OOM || ex.Signal != "KILL" {
		t.Fatalf("hog ended with %+v, want signal KILL and oom; logs:\n%s", ex, p.mustCtl("logs", "hog"))
	}
	if strings.Contains(p.mustCtl("logs", "hog"), "survived") {
		t.Fatalf("the hog allocated 2 GB under memory_max = 32MB")
	}
	if out := p.mustCtl("status", "hog"); !strings.Contains(out, "oom") {
		t.Logf("status text does not say oom yet (circlectl's LAST-EXIT column):\n%s", out)
	}

	var pid int
	testhelper.Eventually(t, waitTimeout, "quiet running", func() bool {
		ps := p.pidsOf("quiet")
		if len(ps) == 1 {
			pid = ps[0]
		}
		return pid != 0
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, waitTimeout, "quiet's kill seen", func() bool {
		var ok bool
		ex, ok = p.lastExit("quiet")
		return ok
	})
	if ex.OOM || ex.Signal != "KILL" {
		t.Fatalf("quiet, killed by SIGKILL from a test, ended with %+v: want signal KILL, not oom", ex)
	}
	p.quit()
}

// max_memory = 64MB: a process that allocates steadily is replaced
// gracefully once it uses more: a new process takes the slot, the old one
// gets the stop signal (TERM, not KILL), circled's log says why, and the
// replacement counts as a restart in status and metrics.
func TestWireLimitsMaxMemoryReplaces(t *testing.T) {
	needLimits(t, limits.Limits{MaxMemory: 64 << 20}, "memory")
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the growing process is a Python script")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "grow.py")
	// The first process grows by 1 MB every 20 ms up to 200 MB, then
	// stays; the next ones (the marker exists) do not grow, so one
	// replacement is seen. max_memory is graceful: how far the first
	// grows before its replacement is ready is not asserted.
	os.WriteFile(script, []byte(`import os, signal, sys, time
def term(*a):
    print("got TERM", os.getpid(), flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("started", os.getpid(), flush=True)
keep = []
marker = sys.argv[1]
if not os.path.exists(marker):
    open(marker, "w").close()
    for i in range(200):
        keep.append(b"x" * (1 << 20))
        time.sleep(0.02)
while True:
    time.sleep(1)
`), 0o644)
	p := startCircled(t, dir, `[watcher:grow]
cmd = `+py+` `+script+` `+filepath.Join(dir, "marker")+`
max_memory = 64MB
graceful_timeout = 20
`)
	p.up()
	var first int
	testhelper.Eventually(t, waitTimeout, "grow running", func() bool {
		ps := p.pidsOf("grow")
		if len(ps) == 1 {
			first = ps[0]
		}
		return first != 0
	})
	var second int
	testhelper.Eventually(t, 60*time.Second, "grow replaced", func() bool {
		ps := p.pidsOf("grow")
		if len(ps) == 1 && ps[0] != first {
			second = ps[0]
		}
		return second != 0 && strings.Contains(p.mustCtl("logs", "grow"), fmt.Sprintf("got TERM %d", first))
	})
	if !strings.Contains(p.out.String(), "max_memory: the process and its descendants use more than 64 MiB") {
		t.Fatalf("circled's log does not say why it replaced %d:\n%s", first, p.out)
	}
	var st ctl.Status
	if err := json.Unmarshal([]byte(p.mustCtl("status", "--json", "grow")), &st); err != nil {
		t.Fatal(err)
	}
	pr := st.Watchers[0].Processes[0]
	if pr.PID != second || pr.PlannedRestarts != 1 || pr.Restarts != 0 {
		t.Fatalf("status after the replacement: pid %d planned_restarts %d restarts %d; want pid %d, 1 planned restart, no crash",
			pr.PID, pr.PlannedRestarts, pr.Restarts, second)
	}
	// The old process's exit: its own, after TERM (code 0), not a KILL.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := p.eventLines(ctx, "--json", "--since", "1h", "grow")
	for {
		l := nextLine(t, lines, waitTimeout)
		var ev ctl.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if ev.Type == "exit" && ev.PID == first {
			if ev.Code == nil || *ev.Code != 0 || ev.Signal != "" {
				t.Fatalf("the replaced process's exit %q: want code 0 after its TERM handler", l)
			}
			break
		}
	}
	cancel()
	// /metrics counts the restart (by whatever reason label).
	_, body := httpGet(t, socketClient(p.socket), "http://circled/metrics")
	n := 0
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "circled_process_restarts_total{") && strings.Contains(l, `watcher="grow"`) {
			f := strings.Fields(l)
			v, _ := strconv.Atoi(f[len(f)-1])
			n += v
		}
	}
	if n != 1 || !strings.Contains(body, `circled_process_restarts_total{reason="max_memory",watcher="grow"} 1`) {
		t.Fatalf("circled_process_restarts_total for grow sums to %d, want 1 with reason max_memory:\n%s", n, body)
	}
	p.quit()
}

// cgroupStat reads "key N" from a flat-keyed cgroup file (-1 if absent).
func cgroupStat(dir, file, key string) int64 {
	b, _ := os.ReadFile(filepath.Join(dir, file))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// cpu_max = 20%: a process that spins is held to a fifth of one CPU,
// measured from its own cgroup: cpu.stat counts the periods it was
// throttled in, and its CPU time (cpuacct.usage, the v1 counterpart of
// v2's cpu.stat usage_usec) over a span of at least 2 s is well under
// what it would use unlimited (a whole CPU).
func TestWireLimitsCPUMax(t *testing.T) {
	needLimits(t, limits.Limits{CPUMax: 20}, "cpu")
	if _, err := os.Stat("/sys/fs/cgroup/cpuacct"); err != nil {
		t.Skipf("no cgroup v1 cpuacct controller to measure the CPU time with: %v", err)
	}
	dir := t.TempDir()
	p := startCircled(t, dir, `[watcher:spin]
cmd = sh -c "while :; do :; done"
cpu_max = 20%
`)
	p.up()
	var pid int
	testhelper.Eventually(t, waitTimeout, "spin running", func() bool {
		ps := p.pidsOf("spin")
		if len(ps) == 1 {
			pid = ps[0]
		}
		return pid != 0
	})
	cpu, acct := v1Cgroup(pid, "cpu"), v1Cgroup(pid, "cpuacct")
	if !strings.Contains(cpu, "spin") || !strings.Contains(acct, "spin") {
		t.Fatalf("spin (pid %d) cpu cgroup %q, cpuacct %q: not limit cgroups of circled's", pid, cpu, acct)
	}
	if q := strings.TrimSpace(readFile(filepath.Join(cpu, "cpu.cfs_quota_us"))); q != "20000" {
		t.Fatalf("cpu.cfs_quota_us = %q, want 20000 (20%% of the 100 ms period)", q)
	}
	usage := func() int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(readFile(filepath.Join(acct, "cpuacct.usage"))), 10, 64)
		return n
	}
	u0, t0, thr0 := usage(), time.Now(), cgroupStat(cpu, "cpu.stat", "nr_throttled")
	var u1 int64
	var wall time.Duration
	testhelper.Eventually(t, 60*time.Second, "2 s of throttled spinning", func() bool {
		u1, wall = usage(), time.Since(t0)
		return wall >= 2*time.Second && cgroupStat(cpu, "cpu.stat", "nr_throttled") >= thr0+10
	})
	share := float64(u1-u0) / float64(wall)
	t.Logf("cpu_max 20%%: %v of CPU in %v (%.1f%% of one CPU); cpu.stat: %s", time.Duration(u1-u0), wall.Round(time.Millisecond),
		share*100, strings.ReplaceAll(strings.TrimSpace(readFile(filepath.Join(cpu, "cpu.stat"))), "\n", ", "))
	if share > 0.35 {
		t.Fatalf("the spinner used %.0f%% of a CPU under cpu_max = 20%%", share*100)
	}
	if u1 <= u0 {
		t.Fatal("the spinner used no CPU at all: nothing measured")
	}
	p.quit()
}
