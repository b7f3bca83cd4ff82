package supervisor

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/circle-supervisor/circle/internal/limits"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/watcher"
)

// limitsParent is this circled's directory, under its own cgroup in each
// controller, that holds the watchers' limit cgroups: one per circled.
func limitsParent() string {
	var b [8]byte
	rand.Read(b[:])
	return "circled-limits-" + hex.EncodeToString(b[:])
}

// specLimits gives sp the Join of wc's limits.Set (issue 16 §4): each
// process joins limit cgroups of its own before it execs. The Set is kept
// per watcher while its limits stay the same; a reload that changes them
// makes a new one (the old one's processes keep theirs until they end).
// A limit this host cannot enforce is logged naming the watcher and the
// key; the spawn then fails with the reason rather than running the
// program unlimited.
func (s *Supervisor) specLimits(sp *watcher.Spec, wc *config.Watcher) {
	l := limitsOf(wc)
	s.limMu.Lock()
	defer s.limMu.Unlock()
	cur := s.limits[wc.Name]
	if l.IsZero() {
		s.retireLimitsLocked(wc.Name)
		return
	}
	if runtime.GOOS == "windows" {
		// Each process's Job Object gets memory_max, cpu_max and
		// pids_max before it runs (the watcher calls Job). The other
		// keys are load errors on Windows.
		if err := limits.Available(l); err != nil {
			s.log.Error("resource limits cannot all be enforced here", "watcher", wc.Name, "file", wc.File, "problems", limitProblems(err))
		}
		sp.Job = jobLimits(l)
		return
	}
	if cur == nil || cur.set.Limits() != l {
		if err := limits.Available(l); err != nil {
			s.log.Error("resource limits cannot all be enforced here", "watcher", wc.Name, "file", wc.File, "problems", limitProblems(err))
		}
		set, err := limits.New(path.Join(s.limitsParent, wc.Name), l)
		if err != nil {
			s.log.Error("resource limits", "watcher", wc.Name, "keys", strings.Join(l.Keys(), ","), "err", err)
			sp.Join = func(int) ([]string, func(), error) { return nil, nil, err }
			return
		}
		s.retireLimitsLocked(wc.Name)
		cur = &limitSet{set: set, open: map[*func()]bool{}, over: map[int]int{}}
		if l.MaxMemory > 0 {
			set.WatchMemory(s.overMemory(wc.Name, cur, l.MaxMemory))
		}
		s.limits[wc.Name] = cur
	}
	if cur.set.V2() && s.cg != nil {
		// On cgroup v2 a process is in one cgroup: the limits go on its
		// own containment cgroup, which the watcher makes and gives to
		// Attach before the process starts (joining another v2 cgroup
		// would take it out of its containment).
		sp.Attach = cur.attach
	} else {
		sp.Join = cur.join
	}
	sp.OOMKilled = cur.set.OOMKilled
}

// ExitReasonOOM is an exit event's reason when the OOM killer ended the
// process (its signal is KILL).
const ExitReasonOOM = "oom"

// exitOOM reports whether watcher name's process of slot wid, which
// ended with st, was killed by the OOM killer: for the exit event and
// the exit counts, which see an exit before the watcher does (so before
// its limits' done). Only a SIGKILL asks, and only a limits.Set with a
// running process in the slot is asked: the watcher's current one, or
// one a reload put aside whose process has not been replaced yet.
func (s *Supervisor) exitOOM(name string, wid int, st watcher.ExitStatus) bool {
	if st.Signal != "KILL" {
		return false
	}
	s.limMu.Lock()
	var sets []*limits.Set
	if cur := s.limits[name]; cur != nil {
		sets = append(sets, cur.set)
	}
	for _, l := range s.retired[name] {
		sets = append(sets, l.set)
	}
	s.limMu.Unlock()
	for _, set := range sets {
		if set.Running(wid) && set.OOMKilled(wid) {
			return true
		}
	}
	return false
}

// overMemory is the max_memory callback of watcher name's Set l: the
// process of slot wid (with its descendants) uses more than size, so the
// slot is replaced gracefully, as max_age does (the watcher logs why).
// It is called once per process, from the Set's goroutine.
func (s *Supervisor) overMemory(name string, l *limitSet, size int64) func(int) {
	why := "max_memory: the process and its descendants use more than " + humanSize(size)
	return func(wid int) {
		e, _, err := s.getCfg(name)
		if err != nil {
			return // removed meanwhile: its processes are stopping
		}
		l.mu.Lock()
		l.over[wid]++
		l.mu.Unlock()
		if err := e.w.ReplaceSlot(wid, why); err != nil {
			s.log.Warn("max_memory: replacing the process", "watcher", name, "wid", wid, "err", err)
		}
	}
}

// ReasonMaxMemory is the restart reason of a replacement for max_memory.
const ReasonMaxMemory = "max_memory"

// tookMaxMemory reports, once per replacement asked, whether watcher
// name's slot wid was replaced for max_memory: for the restart reason of
// the planned restart the observer sees next.
func (s *Supervisor) tookMaxMemory(name string, wid int) bool {
	s.limMu.Lock()
	sets := append([]*limitSet(nil), s.retired[name]...)
	if cur := s.limits[name]; cur != nil {
		sets = append(sets, cur)
	}
	s.limMu.Unlock()
	for _, l := range sets {
		l.mu.Lock()
		n := l.over[wid]
		if n > 0 {
			l.over[wid] = n - 1
		}
		l.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}

// humanSize writes a byte count as max_memory's log line shows it.
func humanSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + " " + u.s
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// limitSet is a watcher's limits.Set and the processes that joined it
// whose end was not reported yet. The watcher calls Join's done when a
// process has ended; one it never reports (a spawn cut short, a watcher
// closed first) is ended by closeLimits, which runs once the watcher's
// processes are gone, so Set.Close finds its cgroups empty and removes
// them. done runs once either way.
type limitSet struct {
	set  *limits.Set
	mu   sync.Mutex
	open map[*func()]bool
	over map[int]int // by wid: max_memory replacements not yet seen by the observer
}

func (l *limitSet) join(wid int) ([]string, func(), error) {
	dirs, done, err := l.set.Join(wid)
	if err != nil || done == nil {
		return dirs, done, err
	}
	return dirs, l.track(done), nil
}

// attach puts the limits on dir, the cgroup v2 that watcher's process
// of slot wid runs in (its containment cgroup): watcher.Spec.Attach on a
// cgroup v2 host with containment.
func (l *limitSet) attach(wid int, dir string) (func(), error) {
	done, err := l.set.Attach(wid, dir)
	if err != nil || done == nil {
		return done, err
	}
	return l.track(done), nil
}

// track records done as open until it runs (once), for close.
func (l *limitSet) track(done func()) func() {
	var once sync.Once
	key := new(func())
	end := func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.open, key)
			l.mu.Unlock()
			done()
		})
	}
	*key = end
	l.mu.Lock()
	l.open[key] = true
	l.mu.Unlock()
	return end
}

// close ends every joined process (they are gone) and closes the Set.
func (l *limitSet) close() error {
	l.mu.Lock()
	ends := make([]func(), 0, len(l.open))
	for k := range l.open {
		ends = append(ends, *k)
	}
	l.mu.Unlock()
	for _, end := range ends {
		end()
	}
	return l.set.Close()
}

// retireLimitsLocked puts aside the watcher's current Set (its limits
// changed or went): its processes may still run, so it is closed with
// the watcher (closeLimits).
func (s *Supervisor) retireLimitsLocked(name string) {
	if cur := s.limits[name]; cur != nil {
		s.retired[name] = append(s.retired[name], cur)
		delete(s.limits, name)
	}
}

// limitProblems names each key that cannot be enforced and why.
func limitProblems(err error) string {
	var u *limits.Unavailable
	if errors.As(err, &u) {
		var b []string
		for _, p := range u.Problems {
			b = append(b, p.Key+": "+p.Reason)
		}
		return strings.Join(b, "; ")
	}
	return err.Error()
}

// closeLimits closes a removed (or shut down) watcher's limits.Set: its
// emptied cgroups are removed.
func (s *Supervisor) closeLimits(name string) {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	s.closeLimitsLocked(name)
}

func (s *Supervisor) closeLimitsLocked(name string) {
	s.retireLimitsLocked(name)
	for _, l := range s.retired[name] {
		if err := l.close(); err != nil {
			s.log.Warn("resource limits: removing cgroups", "watcher", name, "err", err)
		}
	}
	delete(s.retired, name)
}
