//go:build unix

package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/internal/cgroup"
	"github.com/circle-supervisor/circle/internal/procstate"
	"golang.org/x/sys/unix"
)

// leftover is a set of processes a previous circled started and left
// running when it died: one of its cgroups, or one recorded process
// group.
type leftover struct {
	watcher string
	cgroup  string         // the cgroup's path; "" for a process group
	pids    map[int]uint64 // pid -> start time (process groups: verified)
}

// recoverLeftovers stops, before anything starts, the processes that a
// previous circled on the same socket started and did not stop (it was
// killed with SIGKILL, by the OOM killer, or panicked): each gets its
// watcher's stop_signal (TERM for a watcher no longer configured), then
// SIGKILL after its graceful_timeout, and each is logged as a warning.
// They are found in circled's cgroup subtree (the previous one's, from
// the state file, and this one's, named after the same socket) and, for
// processes without a cgroup, in the state file, where each has its
// start time: a pid that now belongs to another process is never
// signalled.
func (s *Supervisor) recoverLeftovers() {
	if s.opts.Socket == "" {
		return
	}
	self := os.Getpid()
	prev := s.prevState
	if prev != nil && prev.OwnerPID != self {
		if st, err := procstate.StartTime(prev.OwnerPID); err == nil && st == prev.OwnerStart {
			s.log.Warn("crash recovery: the state file belongs to a circled that still runs; leaving its processes alone", "pid", prev.OwnerPID, "file", s.state.Path())
			return
		}
	}
	var los []*leftover
	var trees []string
	if prev != nil && prev.Cgroup != "" {
		trees = append(trees, prev.Cgroup)
	}
	if s.cg != nil && (prev == nil || prev.Cgroup != s.cg.Path()) {
		trees = append(trees, s.cg.Path())
	}
	for _, tree := range trees {
		for path, pids := range cgroup.Leftovers(tree, self) {
			lo := &leftover{watcher: s.watcherOfCgroup(tree, path), cgroup: path, pids: map[int]uint64{}}
			for _, pid := range pids {
				st, _ := procstate.StartTime(pid)
				lo.pids[pid] = st
			}
			los = append(los, lo)
		}
	}
	if prev != nil && len(prev.Procs) > 0 {
		los = append(los, verifiedGroups(prev.Procs)...)
	}
	if len(los) > 0 {
		var wg sync.WaitGroup
		for _, lo := range los {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.stopLeftover(lo)
			}()
		}
		wg.Wait()
	}
	// The emptied cgroups go; a populated one (a process in D state)
	// stays and is named in the log.
	for _, tree := range trees {
		ents, _ := os.ReadDir(tree)
		for _, e := range ents {
			if e.IsDir() && !(s.cg != nil && tree == s.cg.Path() && e.Name() == cgroup.SelfLeaf) {
				if err := cgroup.RemoveTree(filepath.Join(tree, e.Name())); err != nil {
					s.log.Warn("crash recovery: cannot remove a previous circled's cgroup", "err", err)
				}
			}
		}
		if s.cg == nil || tree != s.cg.Path() {
			cgroup.RemoveTree(tree)
		}
	}
}

// watcherOfCgroup names the watcher whose cgroup path is (under tree).
func (s *Supervisor) watcherOfCgroup(tree, path string) string {
	rel, err := filepath.Rel(tree, path)
	if err != nil || rel == "." {
		return ""
	}
	dir, _, _ := strings.Cut(rel, string(filepath.Separator))
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.watchers {
		if cgroup.DirName(name) == dir {
			return name
		}
	}
	return strings.TrimPrefix(dir, "_")
}

// verifiedGroups finds, for each recorded process, what is left of it:
// the process itself if it still has its start time, and the members of
// its process group started no earlier. A recorded pid that now has
// another start time means its group is gone (the kernel does not reuse
// a pid while a group of that number exists): nothing of it is touched.
func verifiedGroups(procs []procstate.Proc) []*leftover {
	type member struct {
		pid   int
		start uint64
	}
	byGroup := map[int][]member{}
	for _, pid := range procstate.Pids() {
		st, err := procstate.Stat(pid)
		if err != nil || st.State == 'Z' || st.State == 'X' {
			continue
		}
		byGroup[st.PGID] = append(byGroup[st.PGID], member{pid, st.Start})
	}
	var out []*leftover
	for _, p := range procs {
		if st, err := procstate.Stat(p.PID); err == nil && st.Start != p.Start {
			continue // reused pid
		}
		lo := &leftover{watcher: p.Watcher, pids: map[int]uint64{}}
		for _, m := range byGroup[p.PGID] {
			if m.start >= p.Start {
				lo.pids[m.pid] = m.start
			}
		}
		if len(lo.pids) > 0 {
			out = append(out, lo)
		}
	}
	return out
}

// stopLeftover stops lo: stop signal, grace period, SIGKILL. It polls
// (every 20 ms, startup only, only while leftovers exist): these
// processes are not circled's children, so no SIGCHLD tells when they go.
func (s *Supervisor) stopLeftover(lo *leftover) {
	sigName, grace := "TERM", s.Config().Daemon.GracefulTimeout
	if e, wc, err := s.getCfg(lo.watcher); err == nil && e != nil {
		if wc.StopSignal != "" {
			sigName = wc.StopSignal
		}
		grace = wc.GracefulTimeout
	}
	if grace <= 0 {
		grace = 30 * time.Second
	}
	sig := unix.SignalNum("SIG" + sigName)
	if sig == 0 {
		sig = unix.SIGTERM
	}
	for pid := range lo.pids {
		args := []any{"watcher", lo.watcher, "pid", pid, "cmd", procstate.Cmdline(pid), "signal", sigName, "timeout", grace}
		if lo.cgroup != "" {
			args = append(args, "cgroup", lo.cgroup)
		}
		s.log.Warn("crash recovery: stopping a process that a previous circled started and did not stop", args...)
	}
	lo.signal(sig)
	if lo.waitGone(grace) {
		return
	}
	s.log.Warn("crash recovery: processes still running after the graceful timeout; killing them", "watcher", lo.watcher, "pids", lo.alive())
	if lo.cgroup != "" && filepath.Base(lo.cgroup) != cgroup.SelfLeaf {
		// Never in a circled leaf: this circled may be in it, and a
		// cgroup.kill there would also make some kernels kill every child
		// it clones into other cgroups.
		cgroup.KillTree(lo.cgroup)
	}
	lo.signal(unix.SIGKILL)
	if !lo.waitGone(5 * time.Second) {
		s.log.Error("crash recovery: processes survived SIGKILL (uninterruptible sleep?)", "watcher", lo.watcher, "pids", lo.alive())
	}
}

// alive lists lo's processes that still run (with their start time).
func (lo *leftover) alive() []int {
	var pids []int
	if lo.cgroup != "" {
		for _, pid := range cgroup.PidsPath(lo.cgroup) {
			if pid != os.Getpid() {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	for pid, start := range lo.pids {
		if st, err := procstate.Stat(pid); err == nil && st.Start == start && st.State != 'Z' && st.State != 'X' {
			pids = append(pids, pid)
		}
	}
	return pids
}

// signal sends sig to lo's live processes: in a cgroup, to whatever is
// in it now; otherwise to each recorded pid whose start time still
// matches.
func (lo *leftover) signal(sig unix.Signal) {
	for _, pid := range lo.alive() {
		unix.Kill(pid, sig)
	}
}

func (lo *leftover) waitGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if len(lo.alive()) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
