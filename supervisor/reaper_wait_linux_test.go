package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
	"github.com/circle-supervisor/circle/watcher"
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
		case <-time.After(3 * time.Second):
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
