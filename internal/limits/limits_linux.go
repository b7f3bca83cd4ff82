//go:build linux

package limits

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/cgroups"
	cgfs "github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	"golang.org/x/sys/unix"
)

// unifiedMount is where a pure cgroup v2 host mounts its hierarchy (the
// only place opencontainers/cgroups' fs2 looks).
const unifiedMount = fs2.UnifiedMountpoint

// v2 reports whether the limits use the unified hierarchy (a pure cgroup
// v2 host); otherwise the v1 controllers (legacy and hybrid layouts).
func v2() bool { return cgroups.IsCgroup2UnifiedMode() }

// controllers lists the controllers l needs, with the keys needing each,
// in v1 or v2 names. cpuacct (v1) is joined with cpu for Usage; it sets
// nothing.
func controllers(l Limits, unified bool) (ctrls []string, keys map[string][]string) {
	keys = map[string][]string{}
	add := func(c string, set bool, key string) {
		if !set {
			return
		}
		if _, ok := keys[c]; !ok {
			ctrls = append(ctrls, c)
		}
		keys[c] = append(keys[c], key)
	}
	add("memory", l.MemoryMax != 0, "memory_max")
	add("memory", l.MemoryHigh != 0, "memory_high")
	add("memory", l.MaxMemory != 0, "max_memory")
	add("cpu", l.CPUMax != 0, "cpu_max")
	add("pids", l.PidsMax != 0, "pids_max")
	if unified {
		add("io", l.IOWeight != 0, "io_weight")
	} else {
		add("blkio", l.IOWeight != 0, "io_weight")
		if l.CPUMax != 0 {
			ctrls = append(ctrls, "cpuacct")
		}
	}
	return ctrls, keys
}

// Available reports whether every limit set in l can be enforced here:
// nil, or an *Unavailable naming each key and why (no such controller
// mounted, not delegated to circled's cgroup, a read-only cgroup mount,
// not writable).
func Available(l Limits) error {
	if ps := validate(l); len(ps) > 0 {
		return problems(ps)
	}
	if l.IsZero() {
		return nil
	}
	unified := v2()
	ctrls, keys := controllers(l, unified)
	var ps []Problem
	fail := func(c, why string) {
		for _, k := range keys[c] {
			ps = append(ps, Problem{k, why})
		}
	}
	if unified {
		base, err := ownV2()
		if err != nil {
			for _, c := range ctrls {
				fail(c, err.Error())
			}
			return problems(ps)
		}
		have, _ := cgroups.ReadFile(base, "cgroup.controllers")
		for _, c := range ctrls {
			if !slices.Contains(strings.Fields(have), c) {
				fail(c, fmt.Sprintf("the cgroup v2 %s controller is not available to circled's cgroup %s (its cgroup.controllers: %q; under systemd: Delegate=yes)", c, base, strings.TrimSpace(have)))
			} else if why := unwritable(base); why != "" {
				fail(c, why)
			}
		}
		return problems(ps)
	}
	for _, c := range ctrls {
		if c == "cpuacct" {
			continue // for Usage only
		}
		dir, err := cgroups.GetOwnCgroupPath(c)
		if err != nil {
			why := fmt.Sprintf("no cgroup v1 %s controller is mounted", c)
			if hy, _ := cgroups.ReadFile("/sys/fs/cgroup/unified", "cgroup.controllers"); slices.Contains(strings.Fields(hy), v2Name(c)) {
				why += " (it is on the unified hierarchy of this hybrid layout, which circled does not use for limits)"
			}
			fail(c, why)
			continue
		}
		if why := unwritable(dir); why != "" {
			fail(c, why)
		}
	}
	return problems(ps)
}

func v2Name(c string) string {
	if c == "blkio" {
		return "io"
	}
	return c
}

// unwritable says why circled cannot make cgroups in dir, or "".
func unwritable(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err.Error()
	}
	if st.Flags&unix.ST_RDONLY != 0 {
		return fmt.Sprintf("the cgroup filesystem at %s is mounted read-only", dir)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Sprintf("circled cannot create cgroups in %s: %v", dir, err)
	}
	return ""
}

// ownV2 is circled's own cgroup in the unified hierarchy.
func ownV2() (string, error) {
	m, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	own, ok := m[""]
	if !ok {
		return "", errors.New(`no cgroup v2 ("0::") line in /proc/self/cgroup`)
	}
	return filepath.Join(unifiedMount, own), nil
}

// Set makes and tracks the limit cgroups of one watcher's processes.
// Its methods are safe for concurrent use.
type Set struct {
	l       Limits
	unified bool
	ctrls   []string          // controllers joined
	limited []string          // controllers whose files are written (v2: enabled below the root)
	bases   map[string]string // controller ("" on v2) -> the parent directory
	owns    map[string]string // controller ("" on v2) -> circled's own cgroup
	aliases map[string]string // v1 controller -> the one mounted with it in ctrls
	res     *cgroups.Resources
	seq     atomic.Uint64

	mu       sync.Mutex
	slots    map[int]*slot
	over     func(wid int)
	closed   bool
	leftover []*cell  // cells done() could not remove (still populated)
	inotify  *inotify // v2 memory.events watcher, made for the first MaxMemory watch
}

type slot struct {
	spare *cell   // an emptied cell of the slot, for its next process
	live  []*cell // oldest first: two during a graceful reload
	ended *cell   // the process that ended last (since the last Join)
}

// cell is one process's limit cgroups.
type cell struct {
	wid      int
	paths    map[string]string // controller ("" on v2) -> directory
	external bool              // Attach: the cgroup is not the Set's to remove
	oomBase  uint64
	oom      bool
	watch    *memWatch
}

// New makes a Set for limits l. parent is a relative path, such as
// "circled-<id>/<watcher>", of the directory under circled's own cgroup
// (in each v1 controller, or in the unified hierarchy) that holds the
// processes' cgroups; nothing is created before the first Join. With no
// limit set, the Set does nothing: Join returns no directory.
func New(parent string, l Limits) (*Set, error) {
	if ps := validate(l); len(ps) > 0 {
		return nil, problems(ps)
	}
	if parent == "" || filepath.IsAbs(parent) || filepath.Clean(parent) != parent || parent == ".." || strings.HasPrefix(parent, "../") {
		return nil, fmt.Errorf("limits: parent %q is not a clean relative path", parent)
	}
	s := &Set{l: l, unified: v2(), bases: map[string]string{}, owns: map[string]string{}, aliases: map[string]string{}, slots: map[int]*slot{}}
	if l.IsZero() {
		return s, nil
	}
	s.ctrls, _ = controllers(l, s.unified)
	if s.unified {
		s.limited = s.ctrls
		base, err := ownV2()
		if err != nil {
			return nil, err
		}
		s.bases[""], s.owns[""] = filepath.Join(base, parent), base
	} else {
		for _, c := range s.ctrls {
			dir, err := cgroups.GetOwnCgroupPath(c)
			if err != nil {
				if c == "cpuacct" {
					continue // usage is then unknown; the limit still holds
				}
				return nil, fmt.Errorf("limits: cgroup v1 %s controller: %w", c, err)
			}
			if c != "cpuacct" {
				s.limited = append(s.limited, c)
			}
			// Controllers mounted together ("cpu,cpuacct") share one
			// directory: made and joined once.
			for k, b := range s.bases {
				if b == filepath.Join(dir, parent) {
					s.aliases[c] = k
				}
			}
			if s.aliases[c] == "" {
				s.bases[c], s.owns[c] = filepath.Join(dir, parent), dir
			}
		}
		s.ctrls = slices.DeleteFunc(s.ctrls, func(c string) bool { return s.bases[c] == "" })
	}
	s.res = resources(l, s.unified)
	return s, nil
}

// V2 reports whether the Set uses the unified hierarchy. There a process
// is in one v2 cgroup only: a watcher that gives each process a cgroup of
// its own (internal/cgroup) calls Attach with it instead of Join.
func (s *Set) V2() bool { return s.unified }

// Limits are the Set's limits.
func (s *Set) Limits() Limits { return s.l }

// resources are the limit files' values. Unset limits of a controller
// in use are written as unlimited, so a reused cgroup keeps nothing of
// an earlier configuration.
func resources(l Limits, unified bool) *cgroups.Resources {
	r := &cgroups.Resources{SkipDevices: true}
	if l.MemoryMax != 0 || l.MemoryHigh != 0 || l.MaxMemory != 0 {
		r.Memory = -1
		if l.MemoryMax > 0 {
			r.Memory = l.MemoryMax
		}
		if unified {
			high := "max"
			switch {
			case l.MemoryHigh > 0:
				high = strconv.FormatInt(l.MemoryHigh, 10)
			case l.MaxMemory > 0:
				// memory.events counts "high" once usage passes memory.high:
				// the event max_memory waits for.
				high = strconv.FormatInt(l.MaxMemory, 10)
			}
			r.Unified = map[string]string{"memory.high": high}
		} else {
			r.MemoryReservation = -1
			if l.MemoryHigh > 0 {
				r.MemoryReservation = l.MemoryHigh
			}
		}
	}
	if l.CPUMax > 0 {
		r.CpuQuota, r.CpuPeriod = cpuQuota(l.CPUMax), cfsPeriod
	}
	if l.PidsMax > 0 {
		p := l.PidsMax
		r.PidsLimit = &p
	}
	return r
}

// Join makes (or reuses) the limit cgroups of a new process of slot wid,
// with the limits written, and returns their directories: the process
// writes its pid into each one's cgroup.procs before it execs. done is
// called once the process has ended: it records whether the OOM killer
// killed it (OOMKilled), stops its max_memory watch, and keeps the
// emptied cgroups for the slot's next process (or removes them).
func (s *Set) Join(wid int) (dirs []string, done func(), err error) {
	if len(s.ctrls) == 0 {
		return nil, func() {}, nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, errors.New("limits: the set is closed")
	}
	sl := s.slot(wid)
	c := sl.spare
	sl.spare = nil
	s.mu.Unlock()
	if c == nil {
		if c, err = s.makeCell(wid); err != nil {
			return nil, nil, err
		}
	}
	if err := s.prepare(c); err != nil {
		s.removeCell(c)
		return nil, nil, err
	}
	for _, k := range s.keys() {
		dirs = append(dirs, c.paths[k])
	}
	return dirs, s.start(sl, c), nil
}

// Attach puts the limits on dir, the cgroup v2 that a new process of
// slot wid will run in (the watcher's own per-process cgroup): it gives
// the needed controllers to every cgroup from the root down to dir's
// parent, then writes the limits. done is as Join's; the cgroup is left
// to its owner. Only on v2 (V2).
func (s *Set) Attach(wid int, dir string) (done func(), err error) {
	if len(s.ctrls) == 0 {
		return func() {}, nil
	}
	if !s.unified {
		return nil, errors.New("limits: Attach is for cgroup v2; on v1 the process joins Join's directories")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("limits: the set is closed")
	}
	sl := s.slot(wid)
	s.mu.Unlock()
	c := &cell{wid: wid, paths: map[string]string{"": dir}, external: true}
	if err := s.prepare(c); err != nil {
		return nil, err
	}
	return s.start(sl, c), nil
}

func (s *Set) slot(wid int) *slot {
	sl := s.slots[wid]
	if sl == nil {
		sl = &slot{}
		s.slots[wid] = sl
	}
	return sl
}

// start records c as a running process of sl and arms its max_memory
// watch; it returns c's done.
func (s *Set) start(sl *slot, c *cell) func() {
	s.mu.Lock()
	sl.live = append(sl.live, c)
	sl.ended = nil
	if s.over != nil && s.l.MaxMemory > 0 {
		c.watch = s.arm(c)
	}
	s.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { s.done(sl, c) }) }
}

// makeCell creates a new cgroup named <wid>.<seq> in each controller:
// never one that exists (a previous circled's, or another Set's on the
// same parent during a reload).
func (s *Set) makeCell(wid int) (*cell, error) {
	for try := 0; ; try++ {
		name := strconv.Itoa(wid) + "." + strconv.FormatUint(s.seq.Add(1), 10)
		c := &cell{wid: wid, paths: map[string]string{}}
		taken := false
		var err error
		for _, k := range s.keys() {
			base := s.bases[k]
			if s.unified {
				// The controllers must be given to each level before the
				// limit files exist in the new cgroup.
				if err = os.MkdirAll(base, 0o755); err == nil {
					err = enableV2(base, s.limited)
				}
			} else {
				err = os.MkdirAll(base, 0o755)
			}
			if err != nil {
				break
			}
			p := filepath.Join(base, name)
			if err = os.Mkdir(p, 0o755); err != nil {
				taken = errors.Is(err, fs.ErrExist)
				break
			}
			c.paths[k] = p
		}
		if err == nil {
			return c, nil
		}
		s.removeCell(c)
		if !taken || try >= 1000 {
			return nil, fmt.Errorf("limits: %w", err)
		}
	}
}

// prepare writes the limits into c and reads its OOM kill count.
func (s *Set) prepare(c *cell) error {
	if s.unified {
		dir := c.paths[""]
		if c.external {
			if err := enableV2(filepath.Dir(dir), s.limited); err != nil {
				return err
			}
		}
		if c.external {
			if err := s.resetV2(dir); err != nil {
				return err
			}
		}
		r := *s.res // Set may change its argument (swap): a copy per cell
		m, err := fs2.NewManager(&cgroups.Cgroup{Resources: &r}, dir)
		if err == nil {
			err = m.Set(&r)
		}
		if err == nil && s.l.IOWeight > 0 {
			err = setIOWeightV2(dir, s.l.IOWeight)
		}
		if err != nil {
			return fmt.Errorf("limits: %s: %w", dir, err)
		}
	} else {
		paths := map[string]string{}
		for _, k := range s.limited {
			if k != "blkio" {
				paths[k] = s.path(c, k)
			}
		}
		r := *s.res // Set may change its argument (swap): a copy per cell
		m, err := cgfs.NewManager(&cgroups.Cgroup{Resources: &r}, paths)
		if err == nil {
			v1SetMu.Lock()
			err = m.Set(&r)
			v1SetMu.Unlock()
		}
		if err == nil && s.l.IOWeight > 0 {
			err = setBlkioWeight(s.path(c, "blkio"), s.l.IOWeight)
		}
		if err != nil {
			return fmt.Errorf("limits: %w", err)
		}
	}
	c.oomBase, _ = s.oomCount(c)
	c.oom = false
	return nil
}

// resetV2 clears, in an attached cgroup (the watcher's, reused for the
// slot's next process), the limits an earlier Set may have written there
// and this one does not set: after a reload that dropped memory_max,
// the cgroup must not keep it. Only files that exist are written (a
// controller never enabled above dir has none).
func (s *Set) resetV2(dir string) error {
	l := s.l
	memory := l.MemoryMax != 0 || l.MemoryHigh != 0 || l.MaxMemory != 0
	for _, f := range []struct {
		name, val string
		set       bool
	}{
		{"memory.max", "max", memory},
		{"memory.high", "max", memory},
		{"cpu.max", "max", l.CPUMax > 0},
		{"pids.max", "max", l.PidsMax > 0},
		{"io.weight", "default 100", l.IOWeight > 0},
		{"io.bfq.weight", "100", l.IOWeight > 0},
	} {
		if f.set {
			continue // written by prepare
		}
		if _, err := os.Stat(filepath.Join(dir, f.name)); err != nil {
			continue
		}
		if err := cgroups.WriteFile(dir, f.name, f.val); err != nil {
			return fmt.Errorf("limits: clearing %s in %s: %w", f.name, dir, err)
		}
	}
	return nil
}

// v1SetMu serialises the v1 managers' Set: opencontainers/cgroups/fs
// keeps its subsystems in a package variable, and the blkio one records
// which weight file the kernel has in it without a lock (a data race
// between two Sets preparing at once, seen with -race).
var v1SetMu sync.Mutex

// setBlkioWeight writes io_weight (1..10000, default 100) as v1's weight:
// BFQ's blkio.bfq.weight (1..1000, default 100) or CFQ's blkio.weight
// (10..1000, default 500), as systemd converts IOWeight=.
func setBlkioWeight(dir string, w uint16) error {
	if _, err := os.Stat(filepath.Join(dir, "blkio.bfq.weight")); err == nil {
		return cgroups.WriteFile(dir, "blkio.bfq.weight", strconv.Itoa(min(max(int(w), 1), 1000)))
	}
	if _, err := os.Stat(filepath.Join(dir, "blkio.weight")); err == nil {
		return cgroups.WriteFile(dir, "blkio.weight", strconv.Itoa(min(max(int(w)*5, 10), 1000)))
	}
	return fmt.Errorf("io_weight: %s has neither blkio.bfq.weight nor blkio.weight (the kernel has no BFQ or CFQ I/O scheduler)", dir)
}

// setIOWeightV2 writes io.weight, or io.bfq.weight (1..1000) where the
// kernel has only BFQ's.
func setIOWeightV2(dir string, w uint16) error {
	if _, err := os.Stat(filepath.Join(dir, "io.weight")); err == nil {
		return cgroups.WriteFile(dir, "io.weight", "default "+strconv.Itoa(int(w)))
	}
	if _, err := os.Stat(filepath.Join(dir, "io.bfq.weight")); err == nil {
		return cgroups.WriteFile(dir, "io.bfq.weight", strconv.Itoa(min(int(w), 1000)))
	}
	return fmt.Errorf("io_weight: %s has neither io.weight nor io.bfq.weight", dir)
}

// enableV2 gives ctrls to the children of every cgroup from the root of
// the unified hierarchy down to dir, dir included.
func enableV2(dir string, ctrls []string) error {
	rel, err := filepath.Rel(unifiedMount, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("limits: %s is not under %s", dir, unifiedMount)
	}
	levels := []string{unifiedMount}
	if rel != "." {
		cur := unifiedMount
		for _, p := range strings.Split(rel, "/") {
			cur = filepath.Join(cur, p)
			levels = append(levels, cur)
		}
	}
	for _, lv := range levels {
		have, err := cgroups.ReadFile(lv, "cgroup.subtree_control")
		if err != nil {
			return fmt.Errorf("limits: %w", err)
		}
		var add []string
		for _, c := range ctrls {
			if !slices.Contains(strings.Fields(have), c) {
				add = append(add, "+"+c)
			}
		}
		if len(add) == 0 {
			continue
		}
		if err := cgroups.WriteFile(lv, "cgroup.subtree_control", strings.Join(add, " ")); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("limits: cannot give %s to the cgroups below %s: it holds processes, and cgroup v2 lets only a cgroup without processes of its own do that (run circled as the daemon, which moves itself into a leaf cgroup, or in a systemd unit with Delegate=yes)", strings.Join(add, " "), lv)
			}
			avail, _ := cgroups.ReadFile(lv, "cgroup.controllers")
			return fmt.Errorf("limits: cannot give %s to the cgroups below %s (available there: %q; under systemd: Delegate=yes): %w", strings.Join(add, " "), lv, strings.TrimSpace(avail), err)
		}
	}
	return nil
}

// done ends c's process: its OOM verdict, its watch, its cgroups.
func (s *Set) done(sl *slot, c *cell) {
	oom := false
	if n, err := s.oomCount(c); err == nil {
		oom = n > c.oomBase
	}
	s.mu.Lock()
	w := c.watch
	c.watch, c.oom = nil, oom
	sl.live = slices.DeleteFunc(sl.live, func(x *cell) bool { return x == c })
	sl.ended = c
	keep := !c.external && !s.closed && sl.spare == nil && empty(c)
	if keep {
		sl.spare = c
	}
	in := s.idleInotify()
	s.mu.Unlock()
	if w != nil {
		w.stop()
	}
	if in != nil {
		in.close()
	}
	if !keep && !c.external {
		if !s.tryRemove(c) {
			s.mu.Lock()
			s.leftover = append(s.leftover, c)
			s.mu.Unlock()
		}
	}
}

// idleInotify takes the Set's inotify watcher once the Set is closed
// and no process is left to watch; s.mu is held.
func (s *Set) idleInotify() *inotify {
	if !s.closed || s.inotify == nil {
		return nil
	}
	for _, sl := range s.slots {
		if len(sl.live) > 0 {
			return nil
		}
	}
	in := s.inotify
	s.inotify = nil
	return in
}

// empty reports whether no process is left in c.
func empty(c *cell) bool {
	for _, p := range c.paths {
		pids, err := cgroups.GetPids(p)
		if err != nil || len(pids) > 0 {
			return false
		}
	}
	return true
}

// tryRemove removes c's cgroups at once (no retry), reporting success.
func (s *Set) tryRemove(c *cell) bool {
	ok := true
	for k, p := range c.paths {
		if err := unix.Rmdir(p); err != nil && err != unix.ENOENT {
			ok = false
			continue
		}
		delete(c.paths, k)
	}
	return ok
}

// removeCell removes c's cgroups, waiting briefly for exiting processes.
func (s *Set) removeCell(c *cell) error {
	if c.external {
		return nil
	}
	var errs []error
	for k, p := range c.paths {
		if err := cgroups.RemovePath(p); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(c.paths, k)
	}
	return errors.Join(errs...)
}

// OOMKilled reports whether the OOM killer killed a process in the
// cgroup of slot wid's process that has just ended. Asked before that
// process's done (as the watcher asks, and the exit event): whether a
// running process of the slot has had a kill in its cgroup (with two,
// during a graceful replacement, either counts); asked once no process
// of the slot runs, the verdict its last process's done read. Any
// process of the cgroup counts (the main one or a descendant), and a
// kill by the host's OOM killer as well as by memory_max. Only where
// the Set has a memory controller (a memory key is set); false
// otherwise.
func (s *Set) OOMKilled(wid int) bool {
	s.mu.Lock()
	sl := s.slots[wid]
	if sl == nil {
		s.mu.Unlock()
		return false
	}
	if len(sl.live) == 0 {
		oom := sl.ended != nil && sl.ended.oom
		s.mu.Unlock()
		return oom
	}
	// A copy of each running cell's memory cgroup and count before: done
	// and a reuse change the cell.
	type at struct {
		dir  string
		base uint64
	}
	var live []at
	if s.has("memory") {
		for _, c := range sl.live {
			live = append(live, at{s.memPath(c), c.oomBase})
		}
	}
	s.mu.Unlock()
	for _, c := range live {
		if n, err := s.oomCountAt(c.dir); err == nil && n > c.base {
			return true
		}
	}
	return false
}

// Running reports whether slot wid has a process that joined (or was
// attached) and whose done has not run.
func (s *Set) Running(wid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slots[wid]
	return sl != nil && len(sl.live) > 0
}

func (s *Set) memPath(c *cell) string {
	if s.unified {
		return c.paths[""]
	}
	return s.path(c, "memory")
}

// keys are the keys of a cell's paths: one directory per v1 controller
// (those mounted together counted once), or the one v2 cgroup ("").
func (s *Set) keys() []string {
	if s.unified {
		return []string{""}
	}
	return s.ctrls
}

// has reports whether the Set uses controller k.
func (s *Set) has(k string) bool {
	return slices.Contains(s.ctrls, k) || s.aliases[k] != ""
}

// path is c's directory in v1 controller k (or in the one k is mounted
// with).
func (s *Set) path(c *cell, k string) string {
	if a := s.aliases[k]; a != "" {
		k = a
	}
	return c.paths[k]
}

func (s *Set) oomCount(c *cell) (uint64, error) {
	if !s.has("memory") {
		return 0, errors.New("no memory controller")
	}
	return s.oomCountAt(s.memPath(c))
}

// oomCountAt reads the OOM kill count of memory cgroup p.
func (s *Set) oomCountAt(p string) (uint64, error) {
	if s.unified {
		return fs2.OOMKillCount(p)
	}
	return cgfs.OOMKillCount(p)
}

// Usage is what the cgroups of a process have used.
type Usage struct {
	// Memory is the working set in bytes: usage less inactive file cache
	// (what MaxMemory is compared with); -1 if unknown.
	Memory int64
	// CPU is the CPU time of all its processes (v1: cpuacct.usage; v2:
	// cpu.stat usage_usec); -1 if unknown.
	CPU time.Duration
}

// Usage reads the memory and CPU use of slot wid's newest running
// process (and its descendants).
func (s *Set) Usage(wid int) (Usage, error) {
	s.mu.Lock()
	var c *cell
	if sl := s.slots[wid]; sl != nil && len(sl.live) > 0 {
		c = sl.live[len(sl.live)-1]
	}
	s.mu.Unlock()
	if c == nil {
		return Usage{-1, -1}, fmt.Errorf("limits: slot %d has no running process", wid)
	}
	u := Usage{Memory: -1, CPU: -1}
	if s.has("memory") {
		if _, ws, err := memUsage(s.memPath(c), s.unified); err == nil {
			u.Memory = ws
		}
	}
	if s.unified {
		if v, err := statValue(c.paths[""], "cpu.stat", "usage_usec"); err == nil {
			u.CPU = time.Duration(v) * time.Microsecond
		}
	} else if p := s.path(c, "cpuacct"); p != "" {
		if b, err := cgroups.ReadFile(p, "cpuacct.usage"); err == nil {
			if v, err := strconv.ParseInt(strings.TrimSpace(b), 10, 64); err == nil {
				u.CPU = time.Duration(v)
			}
		}
	}
	return u, nil
}

// memUsage reads a memory cgroup's usage and working set (usage less
// inactive file cache, which the kernel reclaims first).
func memUsage(dir string, unified bool) (raw, ws int64, err error) {
	file, key := "memory.usage_in_bytes", "total_inactive_file"
	if unified {
		file, key = "memory.current", "inactive_file"
	}
	b, err := cgroups.ReadFile(dir, file)
	if err != nil {
		return 0, 0, err
	}
	raw, err = strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err != nil {
		return 0, 0, err
	}
	inactive, _ := statValue(dir, "memory.stat", key)
	return raw, max(raw-inactive, 0), nil
}

// statValue reads "key N" from a flat-keyed cgroup file.
func statValue(dir, file, key string) (int64, error) {
	b, err := cgroups.ReadFile(dir, file)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(b, "\n") {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", file, key)
}

// Close removes the Set's emptied cgroups and, if empty, its parent
// directories; populated ones stay (their processes' done removes them
// later). Joins after Close fail.
func (s *Set) Close() error {
	s.mu.Lock()
	s.closed = true
	var cells []*cell
	for _, sl := range s.slots {
		if sl.spare != nil {
			cells = append(cells, sl.spare)
			sl.spare = nil
		}
	}
	cells = append(cells, s.leftover...)
	s.leftover = nil
	in := s.idleInotify()
	s.mu.Unlock()
	if in != nil {
		in.close()
	}
	var errs []error
	for _, c := range cells {
		if !s.tryRemove(c) {
			if err := s.removeCell(c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for k, b := range s.bases {
		// The parent and its ancestors below circled's own cgroup, while
		// empty.
		own := s.owns[k]
		for d := b; strings.HasPrefix(d, own+"/"); d = filepath.Dir(d) {
			if unix.Rmdir(d) != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}
