// Package supervisor is the arbiter: it owns every watcher, applies a
// config (start in priority order, stop in reverse, diff on reload),
// reaps children (reaper_unix.go), and decides when circled exits.
//
// Control requests, SIGHUP and (later) the config-directory watch all
// call the same methods; per-watcher work is delegated to package
// watcher.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/internal/cgroup"
	"github.com/circle-supervisor/circle/internal/procstate"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/supervisor/logs"
	"github.com/circle-supervisor/circle/watcher"
)

// ErrNoSuchWatcher is returned (wrapped) when a name or glob matches no
// watcher.
var ErrNoSuchWatcher = errors.New("no such watcher")

// StateWaiting is the status of a watcher waiting for its dependencies
// (depends_on) before it starts.
const StateWaiting = "waiting"

// ErrBadConfig wraps a config error from a reload.
var ErrBadConfig = errors.New("bad config")

// ExitError is returned by Run when circled must exit non-zero: a
// critical watcher ended.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// Options configures a Supervisor.
type Options struct {
	Log      *slog.Logger
	LogLevel *slog.LevelVar // set from [circled] loglevel on start and reload
	Spawner  watcher.Spawner
	// Environ is circled's environment for config reloads.
	Environ []string
	// Stdout and Stderr receive StdoutStream output (default os.Stdout/Stderr).
	Stdout, Stderr io.Writer
	// Reopen reopens circled's own log file (SIGUSR1, circlectl reopen).
	Reopen func() error
	// Lifecycle hooks (systemd's sd_notify): every autostart watcher has
	// started; a reload begins (Ready follows it); shutdown begins.
	OnReady, OnReloading, OnStopping func()
	// Socket is the control socket circled listens on (set by the daemon
	// once it holds it). It names circled's cgroup subtree, which circled
	// then moves into, and its state file (SOCKET.state), from which the
	// next circled on the same socket stops what this one left if it
	// dies without stopping its processes. Empty: a subtree of this
	// Supervisor's own and no crash recovery.
	Socket string
}

// Supervisor owns the watchers.
type Supervisor struct {
	opts Options
	log  *slog.Logger

	opMu sync.Mutex // serialises config reloads and whole-set start/stop

	mu            sync.Mutex
	cfg           *config.Config
	watchers      map[string]*entry
	lastReloadErr string
	stopping      bool
	snap          map[string][]byte // config files' bytes when last loaded

	outMu, errMu sync.Mutex
	rings        map[string]*logs.Ring
	files        *logs.Files
	drops        *logs.Drops

	quit     chan struct{}
	quitOnce sync.Once
	crit     chan *ExitError

	cg        *cgroup.Tree     // nil: processes are contained by process groups only
	state     *procstate.File  // nil: no crash recovery
	prevState *procstate.State // what the previous circled on the socket left

	obs *obs // events and metrics counters (events.go, metrics.go)

	waiting map[string]*depWait // watchers waiting for their dependencies (depends.go)
}

type entry struct {
	w   *watcher.Watcher
	cfg *config.Watcher
}

// New makes a Supervisor for cfg; nothing runs until Run.
func New(cfg *config.Config, opts Options) *Supervisor {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	for _, f := range []*func(){&opts.OnReady, &opts.OnReloading, &opts.OnStopping} {
		if *f == nil {
			*f = func() {}
		}
	}
	s := &Supervisor{
		opts:     opts,
		log:      opts.Log,
		cfg:      cfg,
		watchers: map[string]*entry{},
		waiting:  map[string]*depWait{},
		quit:     make(chan struct{}),
		crit:     make(chan *ExitError, 1),
		rings:    map[string]*logs.Ring{},
		files:    logs.NewFiles(),
		drops:    logs.NewDrops(),
	}
	s.snap = snapshot(cfg.Files)
	s.initObs()
	reserveThreads(spareThreads())
	s.applyDaemon(cfg.Daemon)
	s.setupContainment()
	s.openState()
	for _, wc := range cfg.Watchers {
		s.watchers[wc.Name] = s.newEntry(wc, cfg.Daemon)
	}
	return s
}

func (s *Supervisor) applyDaemon(d config.Daemon) {
	if s.opts.LogLevel != nil {
		s.opts.LogLevel.Set(ParseLevel(d.LogLevel))
	}
}

// ParseLevel maps a loglevel value to slog's level (info when unknown).
func ParseLevel(l string) slog.Level {
	switch strings.ToLower(l) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "critical":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (s *Supervisor) newEntry(wc *config.Watcher, d config.Daemon) *entry {
	e := &entry{cfg: wc}
	e.w = watcher.New(s.spec(wc, d), s.spawnerFor(wc.Name), s.log, s.onEvent)
	if s.cg != nil {
		e.w.SetCgroups(s.cg)
	}
	if s.state != nil {
		e.w.SetTracker(s.state)
	}
	s.observe(e)
	return e
}

// onEvent is called by watchers with their lock held: it must not call
// back into them.
func (s *Supervisor) onEvent(ev watcher.Event) {
	s.mu.Lock()
	e := s.watchers[ev.Watcher]
	critical := e != nil && e.cfg.Critical
	stopping := s.stopping
	s.mu.Unlock()
	if !critical || stopping {
		return
	}
	if ev.Kind != "fatal" && ev.Kind != "exited" {
		return
	}
	code := ev.Exit.ExitCode()
	msg := fmt.Sprintf("critical watcher %s ended (%s); shutting down with exit code %d", ev.Watcher, describeExit(ev.Exit), code)
	select {
	case s.crit <- &ExitError{Code: code, Msg: msg}:
	default:
	}
}

func describeExit(e watcher.ExitStatus) string {
	if e.Signal != "" {
		return "signal " + e.Signal
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// Run starts the autostart watchers in priority order and supervises
// until ctx ends, Quit is called or a critical watcher ends; then it
// stops every watcher (reverse priority) and returns. A requested stop
// returns nil; a critical exit returns *ExitError.
func (s *Supervisor) Run(ctx context.Context) error {
	s.opMu.Lock()
	s.recoverLeftovers()
	s.startState()
	s.startGroups(ctx, s.autostartNames(), true, true)
	s.opMu.Unlock()
	s.opts.OnReady() // even if some failed: they are reported, not fatal to circled
	var result error
	select {
	case <-ctx.Done():
		s.log.Info("stopping: signal received")
	case <-s.quit:
		s.log.Info("stopping: quit requested")
	case ce := <-s.crit:
		s.log.Error(ce.Msg)
		result = ce
	}
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.opts.OnStopping()
	s.StopAll()
	return result
}

// Close finishes a shutdown after Run returned and any final sweep of
// stray processes is done: it waits (up to 2 s) for the stopped
// processes' output to be written out, ends every `logs -f` and closes
// the log files.
func (s *Supervisor) Close() {
	s.drainOutput(2 * time.Second)
	for _, n := range s.allNames() {
		s.closeRing(n)
	}
	s.files.Close()
	s.closeObs()
	if s.state != nil {
		if err := s.state.Close(); err != nil {
			s.log.Warn("crash recovery: removing the state file", "err", err)
		}
	}
	if s.cg != nil {
		s.cg.Close()
	}
}

// StopAll stops every watcher gracefully, in reverse priority order,
// watchers of equal priority in parallel.
func (s *Supervisor) StopAll() {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.stopGroups(context.Background(), s.allNames())
}

// drainOutput waits, up to d, until the stopped processes' output has
// been written out.
func (s *Supervisor) drainOutput(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	s.mu.Lock()
	es := make(map[string]*entry, len(s.watchers))
	for n, e := range s.watchers {
		es[n] = e
	}
	s.mu.Unlock()
	for n, e := range es {
		if e.w.WaitOutput(ctx) != nil {
			s.log.Warn("output still open after the watchers stopped (a descendant escaped its group?)", "watcher", n)
		}
	}
}

// Quit asks Run to stop everything and return.
func (s *Supervisor) Quit() {
	s.quitOnce.Do(func() { close(s.quit) })
}

// Stopping reports whether shutdown has begun.
func (s *Supervisor) Stopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

func (s *Supervisor) autostartNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n, e := range s.watchers {
		if e.cfg.Autostart {
			names = append(names, n)
		}
	}
	return names
}

func (s *Supervisor) allNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.watchers {
		names = append(names, n)
	}
	return names
}

// groups returns the entries of names in start order: by level in the
// dependency graph (dependencies first), then by priority, highest
// first. Stopping runs the groups in reverse, so a watcher stops before
// the watchers it depends on.
func (s *Supervisor) groups(names []string) [][]*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	type key struct{ level, prio int }
	lv := s.levelsLocked()
	byKey := map[key][]*entry{}
	for _, n := range names {
		if e := s.watchers[n]; e != nil {
			k := key{lv[n], e.cfg.Priority}
			byKey[k] = append(byKey[k], e)
		}
	}
	keys := make([]key, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].level != keys[j].level {
			return keys[i].level < keys[j].level
		}
		return keys[i].prio > keys[j].prio
	})
	out := make([][]*entry, 0, len(keys))
	for _, k := range keys {
		g := byKey[k]
		sort.Slice(g, func(i, j int) bool { return g[i].cfg.Name < g[j].cfg.Name })
		out = append(out, g)
	}
	return out
}

// parallel runs fn on every entry of g at once and joins the errors.
func parallel(g []*entry, fn func(*entry) error) error {
	errs := make([]error, len(g))
	var wg sync.WaitGroup
	for i, e := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(e)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startGroups starts names in dependency then priority order; each waits
// for its dependencies first (in the background with detach).
func (s *Supervisor) startGroups(ctx context.Context, names []string, wait, detach bool) error {
	var errs []error
	if detach {
		// Those whose dependencies are not reached yet wait in the
		// background from now on (shown as waiting), each starting once
		// its dependencies are; the others start in order below.
		var now []string
		for _, g := range s.groups(names) {
			for _, e := range g {
				if s.depsReached(e) {
					now = append(now, e.cfg.Name)
				} else {
					errs = append(errs, s.startOne(ctx, e, wait, true))
				}
			}
		}
		names = now
	}
	groups := s.groups(names)
	for i, g := range groups {
		errs = append(errs, parallel(g, func(e *entry) error { return s.startOne(ctx, e, wait, detach) }))
		s.mu.Lock()
		delay := s.cfg.Daemon.WarmupDelay
		s.mu.Unlock()
		if delay > 0 && i < len(groups)-1 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Supervisor) stopGroups(ctx context.Context, names []string) error {
	s.cancelWait(names)
	var errs []error
	groups := s.groups(names)
	for i := len(groups) - 1; i >= 0; i-- {
		errs = append(errs, parallel(groups[i], func(e *entry) error { return e.w.Stop(ctx, true) }))
	}
	return errors.Join(errs...)
}

// Match resolves names and globs to watcher names, sorted by priority
// (highest first) then name. No names means every watcher.
func (s *Supervisor) Match(names []string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	if len(names) == 0 {
		for n := range s.watchers {
			out = append(out, n)
		}
	}
	for _, pat := range names {
		found := false
		for n := range s.watchers {
			if ok, _ := path.Match(pat, n); ok || pat == n {
				found = true
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchWatcher, pat)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		pa, pb := s.watchers[a].cfg.Priority, s.watchers[b].cfg.Priority
		if pa != pb {
			return pb - pa
		}
		return strings.Compare(a, b)
	})
	return out, nil
}

func (s *Supervisor) get(name string) (*entry, error) {
	e, _, err := s.getCfg(name)
	return e, err
}

// getCfg returns the entry and its config as of now (a reload may swap
// e.cfg: read it only through here or with s.mu held).
func (s *Supervisor) getCfg(name string) (*entry, *config.Watcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.watchers[name]
	if e == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrNoSuchWatcher, name)
	}
	return e, e.cfg, nil
}

// Start starts the named watchers in dependency then priority order,
// with their stopped dependencies (recursively) first; each waits for
// its dependencies' conditions.
func (s *Supervisor) Start(ctx context.Context, names []string, wait bool) ([]string, error) {
	ns, err := s.Match(names)
	if err != nil {
		return nil, err
	}
	return ns, s.startGroups(ctx, s.withDeps(ns), wait, !wait)
}

// Stop stops the named watchers in reverse priority order.
func (s *Supervisor) Stop(ctx context.Context, names []string, wait bool) ([]string, error) {
	ns, err := s.Match(names)
	if err != nil {
		return nil, err
	}
	if !wait {
		go s.stopGroups(context.Background(), ns)
		return ns, nil
	}
	return ns, s.stopGroups(ctx, ns)
}

// Restart stops the named watchers (reverse priority), then starts them
// (priority order).
func (s *Supervisor) Restart(ctx context.Context, names []string, wait bool) ([]string, error) {
	ns, err := s.Match(names)
	if err != nil {
		return nil, err
	}
	run := func(ctx context.Context) error {
		if err := s.stopGroups(ctx, ns); err != nil {
			return err
		}
		return s.startGroups(ctx, ns, true, false)
	}
	if !wait {
		go run(context.Background())
		return ns, nil
	}
	return ns, run(ctx)
}

// Reload gracefully replaces the processes of the named watchers.
func (s *Supervisor) Reload(ctx context.Context, names []string, wait bool) ([]string, error) {
	ns, err := s.Match(names)
	if err != nil {
		return nil, err
	}
	var errs []error
	s.reloading(ns, true)
	defer s.reloading(ns, false)
	for _, g := range s.groups(ns) {
		errs = append(errs, parallel(g, func(e *entry) error { return e.w.Reload(ctx, wait) }))
	}
	return ns, errors.Join(errs...)
}

// Signal sends sig to a watcher's processes.
func (s *Supervisor) Signal(name, sig string, pid int, children bool) error {
	e, err := s.get(name)
	if err != nil {
		return err
	}
	canon, err := config.ParseSignal(sig)
	if err != nil {
		return err
	}
	return e.w.Signal(canon, pid, children)
}

// SignalAll sends sig to every running process group (SIGUSR2/SIGWINCH
// forwarding).
func (s *Supervisor) SignalAll(sig string) {
	s.mu.Lock()
	es := make([]*entry, 0, len(s.watchers))
	for _, e := range s.watchers {
		es = append(es, e)
	}
	s.mu.Unlock()
	for _, e := range es {
		e.w.Signal(sig, 0, true)
	}
}

// Incr changes a watcher's process count by n and returns the new count.
// An increase beyond config.MaxProcesses (1 for a singleton) is refused
// with an error wrapping watcher.ErrTooManyProcesses, exactly even when
// increases race.
func (s *Supervisor) Incr(name string, n int) (int, error) {
	e, wc, err := s.getCfg(name)
	if err != nil {
		return 0, err
	}
	if !wc.Singleton {
		return e.w.IncrMax(n, config.MaxProcesses)
	}
	c, err := e.w.IncrMax(n, 1)
	if err != nil {
		return c, fmt.Errorf("%s is a singleton: it runs at most one process (%w)", name, watcher.ErrTooManyProcesses)
	}
	return c, nil
}

// NumProcesses is a watcher's configured process count.
func (s *Supervisor) NumProcesses(name string) (int, error) {
	e, err := s.get(name)
	if err != nil {
		return 0, err
	}
	return e.w.Spec().NumProcesses, nil
}

// WatcherStatus is a watcher's status plus what the supervisor knows.
type WatcherStatus struct {
	watcher.Status
	Priority  int
	Autostart bool
}

// Status reports the named watchers (all when none), highest priority
// first, and the last reload error.
func (s *Supervisor) Status(names []string) ([]WatcherStatus, string, error) {
	ns, err := s.Match(names)
	if err != nil {
		return nil, "", err
	}
	out := make([]WatcherStatus, 0, len(ns))
	for _, n := range ns {
		e, wc, err := s.getCfg(n)
		if err != nil {
			continue // removed meanwhile
		}
		ws := WatcherStatus{Status: e.w.Status(), Priority: wc.Priority, Autostart: wc.Autostart}
		if why := s.waitingReason(n); why != "" && ws.State == watcher.StateStopped {
			ws.State, ws.Error = StateWaiting, why
		}
		for i := range ws.Processes {
			if pid := ws.Processes[i].PID; pid != 0 {
				ws.Processes[i].DroppedBytes = s.drops.Dropped(pid)
			}
		}
		out = append(out, ws)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return out, s.lastReloadErr, nil
}

// CountDescendants fills in, for each process of ws, how many processes
// it has beyond its main one (status --json's descendants): from its
// cgroup, else from one scan of /proc for all of them. It reads a file
// per process, so Status does not do it.
func (s *Supervisor) CountDescendants(ws []WatcherStatus) {
	var uncounted []*watcher.ProcStatus
	for i := range ws {
		counts := map[int]int{}
		if e, err := s.get(ws[i].Name); err == nil {
			counts = e.w.CountDescendants()
		}
		for j := range ws[i].Processes {
			p := &ws[i].Processes[j]
			if p.PID == 0 {
				continue
			}
			if n, ok := counts[p.PID]; ok && n >= 0 {
				p.Descendants = n
			} else {
				p.Descendants = -1
				uncounted = append(uncounted, p)
			}
		}
	}
	watcher.FillDescendants(uncounted)
}

// PIDs returns the live pids of a watcher.
func (s *Supervisor) PIDs(name string) ([]int, error) {
	e, err := s.get(name)
	if err != nil {
		return nil, err
	}
	return e.w.PIDs(), nil
}

// Config returns the running config.
func (s *Supervisor) Config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// AllActive reports whether every autostart watcher is active.
func (s *Supervisor) AllActive() bool {
	for _, n := range s.autostartNames() {
		if e, err := s.get(n); err == nil && !e.w.Active() {
			return false
		}
	}
	return true
}
