package limits

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the limited process: LIMITS_JOIN lists the
// cgroup directories it writes its own pid into first (as the watcher's
// trampoline does before it execs), LIMITS_HELPER what it then does.
func TestMain(m *testing.M) {
	if mode := os.Getenv("LIMITS_HELPER"); mode != "" {
		helper(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(mode string) {
	if j := os.Getenv("LIMITS_JOIN"); j != "" {
		for _, d := range strings.Split(j, "\n") {
			if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
				fmt.Printf("join %s: %v\n", d, err)
				os.Exit(3)
			}
		}
	}
	fmt.Println("joined")
	run(mode)
}

func run(mode string) {
	switch mode {
	case "alloc":
		// Allocate and touch 1 MiB at a time until stopped (bounded: 2 GiB,
		// then wait), reporting each 16 MiB.
		var keep [][]byte
		for i := 1; i <= 2048; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
			if i%16 == 0 {
				fmt.Println("allocated", i, "MiB")
			}
		}
		fmt.Println("done allocating", len(keep))
		select {}
	case "cache":
		// Fill the page cache (a file of LIMITS_CACHE_MB), then allocate
		// like "alloc" once told to on stdin.
		mb, _ := strconv.Atoi(os.Getenv("LIMITS_CACHE_MB"))
		f, err := os.Create(os.Getenv("LIMITS_CACHE_FILE"))
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		b := make([]byte, 1<<20)
		for range mb {
			f.Write(b)
		}
		f.Close()
		fmt.Println("cached")
		bufio.NewReader(os.Stdin).ReadString('\n')
		run("alloc")
	case "spin":
		for {
		}
	case "forkbomb":
		forkbomb()
	case "wait":
		select {}
	}
}

// forkbomb forks (raw clone, no exec) up to LIMITS_FORKS children that
// sleep, counts the forks that failed with EAGAIN, kills its children
// and reports "forks ok=N eagain=M other=K". Raw syscalls only between
// the forks: the Go runtime must not need a thread while the pids
// cgroup is full.
func forkbomb() {
	n, _ := strconv.Atoi(os.Getenv("LIMITS_FORKS"))
	debug.SetGCPercent(-1)
	runtime.LockOSThread()
	ts := unix.Timespec{Sec: 1000}
	pids := make([]int, 0, n)
	var eagain, other int
	for range n {
		r, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
		if e != 0 {
			if e == syscall.EAGAIN {
				eagain++
			} else {
				other++
			}
			continue
		}
		if r == 0 { // the child: sleep until killed
			for {
				syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
			}
		}
		pids = append(pids, int(r))
	}
	for _, p := range pids {
		syscall.RawSyscall(syscall.SYS_KILL, uintptr(p), uintptr(syscall.SIGKILL), 0)
	}
	for range pids {
		var ws syscall.WaitStatus
		syscall.Wait4(-1, &ws, 0, nil)
	}
	fmt.Printf("forks ok=%d eagain=%d other=%d\n", len(pids), eagain, other)
}

// newSet makes a Set under a parent of the test's own, closed (and
// checked gone) at the end.
func newSet(t *testing.T, l Limits) *Set {
	t.Helper()
	if err := Available(l); err != nil {
		t.Skipf("SKIP: %v", err)
	}
	parent := fmt.Sprintf("circled-limits-test-%d/%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	s, err := New(parent, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for k, b := range s.bases {
			for d := b; strings.HasPrefix(d, s.owns[k]+"/"); d = filepath.Dir(d) {
				if _, err := os.Stat(d); err == nil {
					t.Errorf("left behind: %s", d)
				}
			}
		}
	})
	return s
}

// startStdin, when set, is the next helper's standard input.
var startStdin io.Reader

type child struct {
	cmd  *exec.Cmd
	out  *bufio.Scanner
	exit chan error
}

// start runs the helper in mode; it joins dirs before doing anything.
func start(t *testing.T, mode string, dirs []string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LIMITS_HELPER="+mode, "LIMITS_JOIN="+strings.Join(dirs, "\n"), "GOMAXPROCS=1")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if c := startStdin; c != nil {
		cmd.Stdin = c
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: bufio.NewScanner(pr), exit: make(chan error, 1)}
	go func() { c.exit <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		err := <-c.exit
		c.exit <- err
		pr.Close()
	})
	if !c.out.Scan() || c.out.Text() != "joined" {
		t.Fatalf("helper did not join %v: %q", dirs, c.out.Text())
	}
	// The rest of the output is read by the test or drained here.
	return c
}

// drain reads and drops the rest of c's output.
func (c *child) drain() {
	go func() {
		for c.out.Scan() {
		}
	}()
}

func (c *child) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-c.exit:
		c.exit <- err // for the cleanup
		return err
	case <-time.After(d):
		t.Fatalf("helper still running after %s", d)
		return nil
	}
}

func TestAvailableHere(t *testing.T) {
	if err := Available(Limits{}); err != nil {
		t.Fatalf("no limits: %v", err)
	}
	err := Available(Limits{MemoryMax: -1, CPUMax: 0.5, IOWeight: 20000})
	var u *Unavailable
	if !errors.As(err, &u) || len(u.Problems) != 3 {
		t.Fatalf("bad values: %v", err)
	}
	for _, p := range u.Problems {
		t.Logf("%s: %s", p.Key, p.Reason)
	}
	all := Limits{MemoryMax: 1 << 30, MemoryHigh: 1 << 29, CPUMax: 50, PidsMax: 100, IOWeight: 100, MaxMemory: 1 << 29}
	t.Logf("v2 %v; all limits: %v", cgroups.IsCgroup2UnifiedMode(), Available(all))
}

func TestNewRejectsBadParent(t *testing.T) {
	for _, p := range []string{"", "/abs", "../up", "a/../../b", ".."} {
		if _, err := New(p, Limits{PidsMax: 5}); err == nil {
			t.Errorf("parent %q accepted", p)
		}
	}
}

// A Set without limits joins nothing and starts nothing.
func TestNoLimitsNoCgroups(t *testing.T) {
	s, err := New("circled-limits-test-none", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dirs, done, err := s.Join(1)
	if err != nil || len(dirs) != 0 {
		t.Fatalf("Join: %v %v", dirs, err)
	}
	done()
	s.WatchMemory(func(int) { t.Error("over") })
	if s.over != nil || s.OOMKilled(1) {
		t.Fatal("a watch or an OOM without limits")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A process that allocates until stopped is held by memory_max: the
// kernel OOM-kills it, and OOMKilled says so; a SIGKILL from elsewhere
// is not an OOM kill.
func TestMemoryMaxOOMKill(t *testing.T) {
	const limit = 64 << 20
	s := newSet(t, Limits{MemoryMax: limit})
	dirs, done, err := s.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, s.memPath(s.slots[1].live[0]), memLimitFile(s)); got != strconv.Itoa(limit) {
		t.Fatalf("limit file: %q", got)
	}
	c := start(t, "alloc", dirs)
	c.drain()
	err = c.wait(t, 60*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want SIGKILL from the OOM killer", err)
	}
	if !s.OOMKilled(1) {
		t.Fatal("OOMKilled false before done")
	}
	done()
	if !s.OOMKilled(1) {
		t.Fatal("OOMKilled false after done")
	}

	// The slot's next process reuses the emptied cgroup; killed by us, it
	// is not an OOM kill.
	dirs2, done2, err := s.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(dirs2, " ") != strings.Join(dirs, " ") {
		t.Errorf("the emptied cgroup was not reused: %v then %v", dirs, dirs2)
	}
	c = start(t, "wait", dirs2)
	c.drain()
	c.cmd.Process.Kill()
	c.wait(t, 30*time.Second)
	done2()
	if s.OOMKilled(1) {
		t.Fatal("a plain SIGKILL reported as an OOM kill")
	}
}

// During a graceful replacement a slot runs two processes: the old one,
// stopped and done, must not decide the verdict of the new one, which
// the OOM killer ends (OOMKilled is asked before the new one's done, as
// the watcher and the exit event ask); Running tells a slot with a
// process from one without.
func TestOOMKilledTwoInSlot(t *testing.T) {
	s := newSet(t, Limits{MemoryMax: 48 << 20})
	if s.Running(1) {
		t.Fatal("Running before any Join")
	}
	dirsOld, doneOld, err := s.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	old := start(t, "wait", dirsOld)
	old.drain()
	dirsNew, doneNew, err := s.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	// The new one's memory cgroup must be its own: read it back.
	if strings.Join(dirsOld, " ") == strings.Join(dirsNew, " ") {
		t.Fatalf("two running processes share %v", dirsNew)
	}
	old.cmd.Process.Kill()
	old.wait(t, 30*time.Second)
	if s.OOMKilled(1) {
		t.Fatal("the old process, killed by us, counted as an OOM kill")
	}
	doneOld()
	if !s.Running(1) {
		t.Fatal("Running false with the new process still running")
	}
	c := start(t, "alloc", dirsNew)
	c.drain()
	err = c.wait(t, 60*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want SIGKILL from the OOM killer", err)
	}
	if !s.OOMKilled(1) {
		t.Fatal("OOMKilled false before the new process's done (the old one's verdict was read)")
	}
	doneNew()
	if s.Running(1) {
		t.Fatal("Running after both done")
	}
	if !s.OOMKilled(1) {
		t.Fatal("OOMKilled false after done")
	}
}

func memLimitFile(s *Set) string {
	if s.unified {
		return "memory.max"
	}
	return "memory.limit_in_bytes"
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// A fork bomb is held by pids_max: its forks past the limit fail with
// EAGAIN (the bomb stops itself after a bounded number of attempts).
func TestPidsMaxHoldsForkBomb(t *testing.T) {
	const max, attempts = 40, 200
	s := newSet(t, Limits{PidsMax: max})
	dirs, done, err := s.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	c := start(t, "forkbomb", dirs, "LIMITS_FORKS="+strconv.Itoa(attempts))
	var report string
	for c.out.Scan() {
		if strings.HasPrefix(c.out.Text(), "forks ") {
			report = c.out.Text()
			break
		}
	}
	c.drain()
	if err := c.wait(t, 60*time.Second); err != nil {
		t.Fatalf("bomb: %v (report %q)", err, report)
	}
	var ok, eagain, other int
	if _, err := fmt.Sscanf(report, "forks ok=%d eagain=%d other=%d", &ok, &eagain, &other); err != nil {
		t.Fatalf("report %q: %v", report, err)
	}
	t.Logf("pids_max %d: %d of %d forks succeeded, %d failed with EAGAIN, %d otherwise", max, ok, attempts, eagain, other)
	// The bomb's own threads count too: fewer than max children fit.
	if ok >= max || eagain < attempts-max || other != 0 {
		t.Fatalf("pids_max did not hold: %s", report)
	}
}

// A CPU hog is held by cpu_max = 20: measured from the cgroup's own CPU
// usage over a window, it stays well below one CPU.
func TestCPUMaxHoldsHog(t *testing.T) {
	s := newSet(t, Limits{CPUMax: 20})
	if !s.unified && s.bases["cpuacct"] == "" {
		t.Skip("SKIP: no cgroup v1 cpuacct controller to measure with")
	}
	dirs, done, err := s.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	start(t, "spin", dirs).drain()
	u0, err := s.Usage(1)
	if err != nil || u0.CPU < 0 {
		t.Fatalf("usage: %v %v", u0, err)
	}
	t0 := time.Now()
	// The measuring window: a wall-clock span, polled.
	for time.Since(t0) < 3*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	u1, _ := s.Usage(1)
	wall := time.Since(t0)
	share := float64(u1.CPU-u0.CPU) / float64(wall)
	t.Logf("cpu_max 20%%: the hog used %v of CPU in %v (%.1f%% of one CPU)", u1.CPU-u0.CPU, wall.Round(time.Millisecond), share*100)
	if !s.unified {
		t.Logf("cpu.stat: %s", strings.ReplaceAll(readFile(t, filepath.Join(s.bases["cpu"], filepath.Base(dirs[0])), "cpu.stat"), "\n", ", "))
	}
	if share > 0.5 {
		t.Fatalf("the hog used %.0f%% of a CPU under cpu_max = 20", share*100)
	}
	if u1.CPU <= u0.CPU {
		t.Fatal("the hog used no CPU at all: nothing measured")
	}
}

// max_memory calls back when the process passes the size: from the
// kernel's event (the sampling interval is an hour, so only an event can
// be in time).
func TestMaxMemoryCallback(t *testing.T) {
	const size = 48 << 20
	s := newSet(t, Limits{MaxMemory: size, MaxMemoryInterval: time.Hour})
	over := make(chan int, 4)
	s.WatchMemory(func(wid int) { over <- wid })
	dirs, done, err := s.Join(3)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	c := start(t, "alloc", dirs)
	c.drain()
	select {
	case wid := <-over:
		if wid != 3 {
			t.Fatalf("over for slot %d, want 3", wid)
		}
	case err := <-c.exit:
		c.exit <- err
		t.Fatalf("helper ended first: %v", err)
	case <-time.After(60 * time.Second):
		u, _ := s.Usage(3)
		t.Fatalf("no callback; usage %+v", u)
	}
	u, _ := s.Usage(3)
	t.Logf("over at working set %d MiB (max_memory %d MiB)", u.Memory>>20, size>>20)
	if u.Memory <= size {
		t.Fatalf("called back at %d bytes, below %d", u.Memory, size)
	}
	c.cmd.Process.Kill()
	c.wait(t, 30*time.Second)
	done()
	w := s.slots[3].ended.watch
	if w != nil {
		t.Fatal("the watch outlived done")
	}
	select {
	case wid := <-over:
		t.Fatalf("a second callback (slot %d)", wid)
	default:
	}
}

// Page cache above max_memory is not memory in use: the threshold event
// comes, the working set is below the size, and circled samples (every
// max_memory_interval) until the process itself passes the size.
func TestMaxMemoryIgnoresPageCache(t *testing.T) {
	const size = 48 << 20
	s := newSet(t, Limits{MaxMemory: size, MaxMemoryInterval: 100 * time.Millisecond})
	over := make(chan int, 4)
	s.WatchMemory(func(wid int) { over <- wid })
	dirs, done, err := s.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	pr, pw := io.Pipe()
	defer pw.Close()
	startStdin = pr
	c := start(t, "cache", dirs, "LIMITS_CACHE_MB=96", "LIMITS_CACHE_FILE="+filepath.Join(t.TempDir(), "cache"))
	startStdin = nil
	for c.out.Scan() && c.out.Text() != "cached" {
	}
	raw, ws, err := memUsage(s.memPath(s.slots[1].live[0]), s.unified)
	t.Logf("after writing 96 MiB: usage %d MiB, working set %d MiB", raw>>20, ws>>20)
	if err != nil || raw <= size {
		t.Skipf("SKIP: the page cache did not push usage above max_memory (%d MiB): %v", raw>>20, err)
	}
	if ws > size {
		t.Skipf("SKIP: the written file's pages count as in use here (working set %d MiB)", ws>>20)
	}
	select {
	case <-over:
		t.Fatal("called back for page cache")
	default:
	}
	c.drain()
	fmt.Fprintln(pw, "go")
	select {
	case <-over:
	case err := <-c.exit:
		c.exit <- err
		t.Fatalf("helper ended first: %v", err)
	case <-time.After(60 * time.Second):
		u, _ := s.Usage(1)
		t.Fatalf("no callback; usage %+v", u)
	}
	_, ws, _ = memUsage(s.memPath(s.slots[1].live[0]), s.unified)
	t.Logf("over at working set %d MiB", ws>>20)
	if ws <= size {
		t.Fatalf("called back at a working set of %d bytes, not above %d", ws, size)
	}
}

// Joins of many slots at once, and two processes of one slot side by
// side (a graceful reload): each process gets cgroups of its own, an
// emptied one is kept for the slot's next process, and Close leaves
// nothing (checked by newSet's cleanup).
func TestConcurrentJoins(t *testing.T) {
	// memory_high alone: memory.limit_in_bytes is written "unlimited" (the
	// library then sets the swap limit too, on its argument).
	s := newSet(t, Limits{PidsMax: 50, MemoryHigh: 256 << 20})
	errs := make(chan error, 20)
	for wid := 1; wid <= 20; wid++ {
		go func() {
			errs <- func() error {
				a, doneA, err := s.Join(wid)
				if err != nil {
					return err
				}
				b, doneB, err := s.Join(wid)
				if err != nil {
					return err
				}
				if strings.Join(a, " ") == strings.Join(b, " ") {
					return fmt.Errorf("slot %d: two processes share %v", wid, a)
				}
				doneA()
				doneB()
				doneA() // done is idempotent
				c, doneC, err := s.Join(wid)
				if err != nil {
					return err
				}
				if strings.Join(c, " ") != strings.Join(a, " ") && strings.Join(c, " ") != strings.Join(b, " ") {
					return fmt.Errorf("slot %d: the emptied cgroup was not reused: %v, %v, then %v", wid, a, b, c)
				}
				for _, d := range b {
					if strings.Join(c, " ") != strings.Join(b, " ") {
						if _, err := os.Stat(d); err == nil {
							return fmt.Errorf("slot %d: %s kept beside the spare", wid, d)
						}
					}
				}
				doneC()
				return nil
			}()
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// Every key lands in its v1 file, and a reused cgroup is rewritten.
func TestLimitFilesV1(t *testing.T) {
	if cgroups.IsCgroup2UnifiedMode() {
		t.Skip("SKIP: v1 files; this host is cgroup v2")
	}
	l := Limits{MemoryMax: 300 << 20, MemoryHigh: 200 << 20, CPUMax: 150, PidsMax: 77, IOWeight: 300}
	s := newSet(t, l)
	_, done, err := s.Join(1)
	if err != nil {
		t.Fatal(err)
	}
	c := s.slots[1].live[0]
	want := map[string]string{
		"memory/memory.limit_in_bytes":      strconv.Itoa(300 << 20),
		"memory/memory.soft_limit_in_bytes": strconv.Itoa(200 << 20),
		"cpu/cpu.cfs_period_us":             "100000",
		"cpu/cpu.cfs_quota_us":              "150000",
		"pids/pids.max":                     "77",
	}
	for k, v := range want {
		ctrl, file, _ := strings.Cut(k, "/")
		if got := readFile(t, s.path(c, ctrl), file); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	bfq := filepath.Join(s.path(c, "blkio"), "blkio.bfq.weight")
	if b, err := os.ReadFile(bfq); err == nil {
		if got := strings.TrimSpace(string(b)); !strings.HasSuffix(got, "300") {
			t.Errorf("blkio.bfq.weight = %q, want 300", got)
		}
	} else {
		t.Logf("no BFQ weight file here: %v", err)
	}
	done()
	if s.slots[1].spare != c {
		t.Fatal("the emptied cgroup was not kept as the slot's spare")
	}
}

// An attached cgroup v2 (the watcher's, reused by the slot's next
// process) loses the limits this Set does not set: a reload that drops
// memory_max must not leave it there. Plain files stand in for the
// cgroup's (no v2 controllers on every test host); a file the cgroup
// lacks is not made.
func TestResetV2ClearsUnsetLimits(t *testing.T) {
	cgroups.TestMode = true // cgroupfs's own checks off for plain files
	defer func() { cgroups.TestMode = false }()
	dir := t.TempDir()
	for name, v := range map[string]string{"memory.max": "1000", "memory.high": "900", "cpu.max": "5000 100000", "pids.max": "20", "io.weight": "default 50"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := &Set{l: Limits{PidsMax: 10}, unified: true}
	if err := s.resetV2(dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"memory.max": "max", "memory.high": "max", "cpu.max": "max", "pids.max": "20", "io.weight": "default 100"} {
		if got := readFile(t, dir, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "io.bfq.weight")); err == nil {
		t.Error("io.bfq.weight made where the cgroup had none")
	}
}
