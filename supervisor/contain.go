package supervisor

import (
	"crypto/rand"
	"fmt"
	"hash/fnv"
	"os"
	"runtime"
	"strconv"
	"sync"

	"github.com/circle-supervisor/circle/internal/cgroup"
	"github.com/circle-supervisor/circle/internal/procstate"
)

// NoCgroupsEnv, set to a non-empty value in circled's environment, makes
// it contain processes by their process group only, even where a cgroup
// v2 is writable (the tests of that mode use it).
const NoCgroupsEnv = "CIRCLED_NO_CGROUPS"

// setupContainment decides how processes are contained, once, and logs
// it. With a writable cgroup v2 each process gets a cgroup of its own
// (internal/cgroup); elsewhere circled relies on process groups, on being
// PID 1 or a child subreaper (descendants that escape their group
// re-parent to it and the final sweep stops them), and on the
// CIRCLED_WATCHER/CIRCLED_WID variables every child inherits.
func (s *Supervisor) setupContainment() {
	if os.Getenv(NoCgroupsEnv) != "" {
		s.log.Info("process containment: process groups and subreaper (cgroups off: " + NoCgroupsEnv + " is set)")
		return
	}
	// The daemon (Options.Socket set) names its subtree after its socket,
	// so the next circled on the same socket finds what a crashed one
	// left, and moves itself into a leaf of it. Anything else (tests that
	// embed a Supervisor) gets a subtree of its own and stays put.
	// (Not named after the pid: as PID 1 of a container every circled
	// is pid 1.)
	var rnd [6]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("circled-%x", rnd)
	moveSelf := false
	if s.opts.Socket != "" {
		name, moveSelf = cgroupName(s.opts.Socket), true
	}
	t, err := cgroup.Setup(name, moveSelf)
	if err != nil {
		s.log.Info("process containment: process groups and subreaper (no writable cgroup v2)", "reason", err)
		return
	}
	s.cg = t
	how := "clone3 into the cgroup"
	if !t.Clone3() {
		how = "moved into the cgroup right after exec (no clone3 with CLONE_INTO_CGROUP)"
	}
	s.log.Info("process containment: one cgroup v2 per process", "cgroup", t.Path(), "placement", how)
}

// spareThreads is how many OS threads circled makes at start, beyond
// those it has, and keeps idle (reserveThreads): GOMAXPROCS+10 where a
// limit on the number of tasks applies to circled at start (a pids.max
// above it, such as systemd's TasksMax or docker's --pids-limit, or
// RLIMIT_NPROC), none where nothing limits them (they cost 10 idle
// threads and their memory for nothing there). A limit set on a running
// circled (systemctl set-property TasksMax=) finds it without spares:
// restart it.
func spareThreads() int {
	if !cgroup.TasksLimited() {
		return 0
	}
	return runtime.GOMAXPROCS(0) + 10
}

var reserveOnce sync.Once

// reserveThreads makes the Go runtime create n OS threads now, before any
// child runs, and leaves them idle: the runtime reuses an idle thread
// before it creates one and never destroys an idle one. When the children
// later fill a pids cgroup (or RLIMIT_NPROC) shared with circled, circled
// then rarely needs a new thread; creating one there fails and the
// runtime aborts ("pthread_create failed", "newosproc"), orphaning every
// child, while a failed fork only makes the slot back off. Measured on
// Linux with pids.max = 60 and 200 processes wanted: without this,
// circled died at its first status request; with it, it stayed up.
func reserveThreads(n int) {
	if n <= 0 {
		return
	}
	reserveOnce.Do(func() {
		var started, done sync.WaitGroup
		release := make(chan struct{})
		for range n {
			started.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				// Locked and blocked, each goroutine holds a thread of its
				// own, so the runtime has to make n of them.
				runtime.LockOSThread()
				started.Done()
				<-release
				runtime.UnlockOSThread() // the thread goes back to the idle pool
			}()
		}
		started.Wait()
		close(release)
		done.Wait()
	})
}

// cgroupName is circled's subtree name for a control socket path.
func cgroupName(socket string) string {
	h := fnv.New64a()
	h.Write([]byte(socket))
	return "circled-" + strconv.FormatUint(h.Sum64(), 16)
}

// openState opens the state file next to the control socket and reads
// what the previous circled on it left (see recoverLeftovers). Where it
// cannot be used (a directory others can write, Windows), crash recovery
// is off and the log says why, once.
func (s *Supervisor) openState() {
	if s.opts.Socket == "" || runtime.GOOS == "windows" {
		return
	}
	f, prev, err := procstate.Open(s.opts.Socket + ".state")
	if err != nil {
		s.log.Warn("crash recovery is off: no state file next to the socket", "reason", err)
		return
	}
	s.state, s.prevState = f, prev
	s.log.Info("crash recovery: state file", "path", f.Path())
}

// startState records circled's cgroup and starts writing the state file
// (after recovery: it replaces the previous circled's).
func (s *Supervisor) startState() {
	if s.state == nil {
		return
	}
	if s.cg != nil {
		s.state.SetCgroup(s.cg.Path())
	}
	if err := s.state.Start(); err != nil {
		s.log.Warn("crash recovery: cannot write the state file", "err", err)
	}
}
