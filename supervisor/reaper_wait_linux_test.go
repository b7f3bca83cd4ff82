package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
	"github.com/circle-supervisor/circle/watcher"
	"golang.org/x/sys/unix"
)

// goroutinesIn counts the goroutines whose stack mentions fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// Run returns while waitExits' goroutine stays blocked in
// waitid(P_ALL) whenever the process still has a child; that goroutine
// sweeps once more at the next exit of ANY child of the process: it calls
// onExit after Run returned, and it reaps (steals) the status of a child
// that another reaper, os/exec or watcher.DirectSpawner waits for. Before
// ebd080f nothing swept after Run returned.
func TestReaperStopsWithRun(t *testing.T) {
	r := NewReaper(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// A child registered with r that outlives Run (circled: a process that
	// survived afterStop; tests: a process another test left running).
	ended := make(chan watcher.ExitStatus, 1)
	keep := exec.Command("sleep", "100")
	if _, err := r.Start(keep, func(st watcher.ExitStatus) { ended <- st }); err != nil {
		t.Fatal(err)
	}
	go func() { r.Run(ctx); close(done) }()
	// With ebd080f: until its goroutine is in waitid (before it, there is
	// none, and this just waits 2 s).
	testhelper.Wait(2*time.Second, func() (bool, string) { return goroutinesIn("waitExits.func1") > 0, "" })
	cancel()
	<-done
	leaked := goroutinesIn("waitExits.func1")

	// Someone else starts a child and waits for it (os/exec, DirectSpawner,
	// another Reaper in the same test binary).
	other := exec.Command("/bin/sh", "-c", "exit 3")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	stolen, _ := testhelper.Wait(3*time.Second, func() (bool, string) { return orphans(r) > 0, "" })
	err := other.Wait()
	var ee *exec.ExitError
	t.Logf("after Run returned: %d waitExits goroutine(s) still blocked in waitid", leaked)
	if stolen || !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("after Run returned, the stopped reaper reaped a child it never started: %v; os/exec's Wait got %v (want exit status 3)", stolen, err)
	}
	keep.Process.Kill()
	select {
	case st := <-ended:
		t.Errorf("onExit ran after Run returned (status %+v)", st)
	case <-time.After(2 * time.Second):
	}
}

// the same in the shape the supervisor tests have (one Reaper per
// test, in one process): reaper A's Run has returned while a child of the
// process still ran, reaper B runs; B's child exits, A's leftover
// goroutine and B's both wake from waitid, and when A's sweeps first,
// B never calls onExit: the watcher waits for that exit forever (the
// -count=3 run of ./supervisor/ hung 8 minutes in
// TestSocketsInfoAndReloadKeepsOpen, in Watcher.Stop, with waitid blocked).
func TestStoppedReaperStealsFromRunningOne(t *testing.T) {
	lost := 0
	const rounds = 20
	for range rounds {
		a := NewReaper(slog.New(slog.DiscardHandler))
		actx, acancel := context.WithCancel(context.Background())
		adone := make(chan struct{})
		keep := exec.Command("sleep", "100")
		if err := keep.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { a.Run(actx); close(adone) }()
		testhelper.Wait(2*time.Second, func() (bool, string) { return goroutinesIn("waitExits.func1") > 0, "" })
		acancel()
		<-adone

		b := NewReaper(slog.New(slog.DiscardHandler))
		bctx, bcancel := context.WithCancel(context.Background())
		bdone := make(chan struct{})
		go func() { b.Run(bctx); close(bdone) }()
		got := make(chan watcher.ExitStatus, 1)
		if _, err := b.Start(exec.Command("/bin/sh", "-c", "exit 4"), func(st watcher.ExitStatus) { got <- st }); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second): // a lost exit never comes; a loaded host's sh can take seconds
			lost++
		}
		bcancel()
		<-bdone
		keep.Process.Kill()
		// keep's status: whoever is left reaps it (a, b or nobody).
		testhelper.Wait(2*time.Second, func() (bool, string) { return goroutinesIn("waitExits.func1") == 0, "" })
		a.Sweep()
	}
	if lost > 0 {
		t.Errorf("%d of %d exits of reaper B's child never reached its onExit (reaped by stopped reaper A)", lost, rounds)
	}
}

// waitid's si_pid, read by siginfoPid, is the pid of the child that
// exited (the offset differs between 32- and 64-bit Linux).
func TestSiginfoPid(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var info unix.Siginfo
	// P_PID, WNOWAIT: only this child, left for cmd.Wait to reap.
	for {
		err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	got := siginfoPid(&info)
	want := cmd.Process.Pid
	cmd.Wait()
	if got != want {
		t.Fatalf("siginfoPid = %d, want the child's pid %d", got, want)
	}
}

// The waiter reaps only the pid waitid reported and relies on the next
// waitid for the rest: a burst of exits among many children, and
// orphans re-parented to circled (the subreaper) dying in the same
// burst, must all be reaped, each registered exit delivered exactly once,
// with no Sweep from the test (it would hide an exit the waiter missed).
func TestReaperBurstAndOrphansWithoutSweep(t *testing.T) {
	r := runReaper(t)
	if !r.complete {
		t.Skip("this process cannot become a child subreaper (PR_SET_CHILD_SUBREAPER refused): orphans would not re-parent to it")
	}
	const n, parents = 150, 5
	var mu sync.Mutex
	calls := map[int]int{}
	sigs := map[int]string{}
	var pids, orphanPids []int
	// A failure part-way must not leave 155 sleeps behind (kill of a
	// reaped pid: at worst ESRCH; the children are this process's, so
	// their numbers are not reused before they are reaped).
	t.Cleanup(func() {
		for _, p := range append(append([]int(nil), pids...), orphanPids...) {
			if ppidOf(p) == os.Getpid() {
				unix.Kill(p, unix.SIGKILL)
			}
		}
	})
	for range n {
		var pid int
		var known sync.Mutex
		known.Lock()
		pid, err := r.Start(exec.Command("sleep", "600"), func(st watcher.ExitStatus) {
			known.Lock()
			defer known.Unlock()
			mu.Lock()
			defer mu.Unlock()
			calls[pid]++
			sigs[pid] = st.Signal
		})
		known.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	// Orphans: each parent prints its background sleep's pid and exits;
	// the sleep re-parents to this process.
	before := orphans(r)
	for range parents {
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/bin/sh", "-c", "sleep 600 >/dev/null 2>&1 </dev/null & echo $!")
		cmd.Stdout = wr
		parentDone := make(chan watcher.ExitStatus, 1)
		_, err = r.Start(cmd, func(st watcher.ExitStatus) { parentDone <- st })
		wr.Close()
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(rd).ReadString('\n')
		rd.Close()
		if err != nil {
			t.Fatal(err)
		}
		gp, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-parentDone:
		case <-time.After(30 * time.Second):
			t.Fatal("the orphan's parent's exit was not delivered")
		}
		// Re-parented: its parent is this process now.
		testhelper.Poll(t, 10*time.Second, "orphan re-parented", func() (bool, string) {
			pp := ppidOf(gp)
			return pp == os.Getpid(), fmt.Sprintf("ppid %d", pp)
		})
		orphanPids = append(orphanPids, gp)
	}
	// The burst: every child and every orphan at once.
	for _, p := range append(append([]int(nil), pids...), orphanPids...) {
		unix.Kill(p, unix.SIGKILL)
	}
	testhelper.Poll(t, 30*time.Second, "every registered exit", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == n, fmt.Sprintf("%d of %d", len(calls), n)
	})
	testhelper.Poll(t, 30*time.Second, "every orphan reaped", func() (bool, string) {
		left := 0
		for _, p := range orphanPids {
			if ppidOf(p) == os.Getpid() { // a zombie of ours still exists (a reused pid has another parent)
				left++
			}
		}
		return left == 0 && orphans(r)-before >= parents, fmt.Sprintf("%d orphans not reaped; %d counted", left, orphans(r)-before)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, p := range pids {
		if calls[p] != 1 || sigs[p] != "KILL" {
			t.Errorf("pid %d: onExit called %d times, signal %q; want once, KILL", p, calls[p], sigs[p])
		}
	}
	for _, p := range orphanPids {
		if calls[p] != 0 {
			t.Errorf("orphan %d was delivered to a registered onExit", p)
		}
	}
}

// ppidOf is the parent pid in /proc/PID/stat, 0 if gone.
func ppidOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}
