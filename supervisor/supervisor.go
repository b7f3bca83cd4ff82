package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/circle-supervisor/circle/internal/cgroup"
	"github.com/circle-supervisor/circle/internal/evlistener"
	"github.com/circle-supervisor/circle/internal/procstate"
	"github.com/circle-supervisor/circle/internal/sockets"
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
	// Upgrade, when set, is what the previous circled of this process
	// handed over (a live upgrade): New adopts its processes instead of
	// letting Run start any, and Run skips crash recovery.
	Upgrade *UpgradeState
}

// Supervisor owns the watchers.
type Supervisor struct {
	opts Options
	log  *slog.Logger

	opMu sync.Mutex // serialises config reloads, the startup and the shutdown's stops

	// closing is set when shutdown begins: no command begins after it.
	closing atomic.Bool
	// life ends when shutdown begins: it cancels a reload in progress.
	life    context.Context
	endLife context.CancelFunc

	mu            sync.Mutex
	cfg           *config.Config
	watchers      map[string]*entry
	lastReloadErr string
	snap          map[string][]byte // config files' bytes when last loaded
	bg            sync.WaitGroup    // goroutines started by goTracked
	bgClosed      bool              // shutdown waited for bg: start no more

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

	sockMu       sync.Mutex   // guards sockets (a reload updates the set)
	sockets      *sockets.Set // [socket:NAME] sections, bound by circled; nil: none
	limMu        sync.Mutex
	limits       map[string]*limitSet   // by watcher: its resource limits
	retired      map[string][]*limitSet // by watcher: Sets of older limits, closed with it
	limitsParent string                 // this circled's directory of limit cgroups
	// startErr, when set, is why Run starts nothing (a socket that could
	// not be bound).
	startErr error

	evl evListeners // supervisord event listeners (evlisteners.go)

	// adopt: by watcher, what a live upgrade handed over, until newEntry
	// adopted it (upgrade*.go).
	adopt map[string]*UpgradeWatcher
}

type entry struct {
	name string
	w    *watcher.Watcher
	cfg  *config.Watcher // swapped by a reload: read with s.mu held
	lane lane            // orders the commands that change w
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
		limits:   map[string]*limitSet{},
		retired:  map[string][]*limitSet{},
	}
	s.limitsParent = limitsParent()
	s.life, s.endLife = context.WithCancel(context.Background())
	s.snap = snapshot(cfg.Files)
	if u := opts.Upgrade; u != nil {
		// The bytes the running config was read from: a file changed
		// since is applied by the next reload.
		s.snap, s.lastReloadErr = u.Snap, u.LastReloadError
		s.adopt = map[string]*UpgradeWatcher{}
		for i := range u.Watchers {
			uw := &u.Watchers[i]
			s.adopt[uw.State.Name] = uw
			s.rings[uw.State.Name] = logs.RestoreRing(uw.Ring)
		}
	}
	s.initObs()
	if u := opts.Upgrade; u != nil {
		s.obs.bus.restore(u.Events)
		s.obs.restoreCounters(u.Counters)
	}
	reserveThreads(spareThreads())
	s.applyDaemon(cfg.Daemon)
	if opts.Upgrade != nil {
		s.reenterCgroup(opts.Upgrade)
	}
	s.setupContainment()
	s.openState()
	if opts.Upgrade != nil {
		s.adoptSockets(cfg, opts.Upgrade.Sockets)
	} else {
		s.bindSockets(cfg)
	}
	s.initEvListeners(cfg)
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
	e := &entry{name: wc.Name, cfg: wc}
	e.w = watcher.New(s.spec(wc, d), s.spawnerFor(wc.Name), s.log, s.onEvent)
	s.evWatcherAdded(wc)
	if s.cg != nil {
		e.w.SetCgroups(s.cg)
	}
	if s.state != nil {
		e.w.SetTracker(s.state)
	}
	if uw := s.adopt[wc.Name]; uw != nil {
		delete(s.adopt, wc.Name)
		s.adoptEntry(e, uw)
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
	s.mu.Unlock()
	if !critical || s.closing.Load() {
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
//
// Shutdown (DESIGN.md "A shutdown"): no command begins any more, every
// command in flight and a reload in progress are cancelled, every
// watcher stops, and Run waits for every background goroutine a command
// started before it returns.
func (s *Supervisor) Run(ctx context.Context) error {
	if s.startErr != nil {
		s.log.Error("not starting", "err", s.startErr)
		s.beginShutdown()
		s.waitTracked()
		return s.startErr
	}
	// The startup is cut short by a stop request as well.
	startCtx, endStart := context.WithCancel(ctx)
	defer endStart()
	go func() {
		select {
		case <-s.quit:
			endStart()
		case <-startCtx.Done():
		}
	}()
	s.opMu.Lock()
	if s.opts.Upgrade != nil {
		// A live upgrade: every process was adopted (New); the previous
		// circled's processes are this one's, not leftovers.
		s.startState()
		s.evPublish(evlistener.SupervisorRunning())
	} else {
		s.recoverLeftovers()
		s.startState()
		s.evPublish(evlistener.SupervisorRunning())
		if b, err := s.beginAll(startCtx, s.entries(s.autostartNames()), true); err == nil {
			s.startOps(startCtx, b, true, true)
			b.end()
		}
	}
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
	s.beginShutdown()
	s.evPublish(evlistener.SupervisorStopping())
	s.opts.OnStopping()
	s.StopAll()
	s.waitTracked()
	return result
}

// Close finishes a shutdown after Run returned and any final sweep of
// stray processes is done: it waits (up to 2 s) for the stopped
// processes' output to be written out, ends every `logs -f` and closes
// the log files.
func (s *Supervisor) Close() {
	s.drainOutput(2 * time.Second)
	s.closeEvListeners()
	for _, n := range s.allNames() {
		s.closeRing(n)
	}
	for _, e := range s.allEntries() {
		s.dropWatcher(e)
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
	s.closeSockets()
}

// StartupError is why Run would start nothing (a [socket:NAME] that
// could not be bound, naming it), or nil. circled may check it before
// telling a launcher it started.
func (s *Supervisor) StartupError() error { return s.startErr }

// StopAll stops every watcher gracefully, in reverse priority order,
// watchers of equal priority in parallel. It begins the shutdown: no
// command begins afterwards.
func (s *Supervisor) StopAll() {
	s.beginShutdown()
	s.opMu.Lock()
	defer s.opMu.Unlock()
	es := s.entries(s.allNames())
	b := make(batch, len(es))
	for i, e := range es {
		b[i] = s.beginFinal(context.Background(), e, false)
	}
	s.stopOps(b)
	b.end()
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
	return s.closing.Load()
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

// entries returns the entries of names that exist.
func (s *Supervisor) entries(names []string) []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	es := make([]*entry, 0, len(names))
	for _, n := range names {
		if e := s.watchers[n]; e != nil {
			es = append(es, e)
		}
	}
	return es
}

// groups returns the ops of b in start order: by level in the
// dependency graph (dependencies first), then by priority, highest
// first. Stopping runs the groups in reverse, so a watcher stops before
// the watchers it depends on.
func (s *Supervisor) groups(b batch) []batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	type key struct{ level, prio int }
	lv := s.levelsLocked()
	byKey := map[key]batch{}
	for _, o := range b {
		k := key{lv[o.e.name], o.e.cfg.Priority}
		byKey[k] = append(byKey[k], o)
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
	out := make([]batch, 0, len(keys))
	for _, k := range keys {
		g := byKey[k]
		sort.Slice(g, func(i, j int) bool { return g[i].e.name < g[j].e.name })
		out = append(out, g)
	}
	return out
}

// parallel runs fn on every op of g at once and returns each one's error.
func parallel(g batch, fn func(*op) error) map[*op]error {
	errs := make([]error, len(g))
	var wg sync.WaitGroup
	for i, o := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(o)
		}()
	}
	wg.Wait()
	m := map[*op]error{}
	for i, err := range errs {
		if err != nil {
			m[g[i]] = err
		}
	}
	return m
}

// joinErrs joins the errors of m in a stable order.
func joinErrs(m map[*op]error) error {
	ops := slices.SortedFunc(maps.Keys(m), func(a, b *op) int { return strings.Compare(a.e.name, b.e.name) })
	errs := make([]error, len(ops))
	for i, o := range ops {
		errs[i] = m[o]
	}
	return errors.Join(errs...)
}

// beginStart begins the start of es and, recursively, of their
// dependencies that no command wants up (stopped, or never started); a
// dependency some command wants up is waited for, not started again.
// With detach the ops outlive ctx (they run in the background).
func (s *Supervisor) beginStart(ctx context.Context, es []*entry, detach bool) (batch, error) {
	if detach {
		ctx = context.Background()
	}
	b, err := s.beginAll(ctx, es, true)
	if err != nil {
		return nil, err
	}
	seen := map[*entry]bool{}
	for _, e := range es {
		seen[e] = true
	}
	for i := 0; i < len(b); i++ {
		s.mu.Lock()
		var deps []*entry
		for _, d := range b[i].e.cfg.DependsOn {
			if de := s.watchers[d.Name]; de != nil && !seen[de] {
				seen[de] = true
				deps = append(deps, de)
			}
		}
		s.mu.Unlock()
		for _, de := range deps {
			o, ok, err := s.beginIf(ctx, de, true, func(up bool) bool { return !up })
			if err != nil {
				b.end()
				return nil, err
			}
			if ok {
				b = append(b, o)
			}
		}
	}
	return b, nil
}

// startOps starts the watchers of b in dependency then priority order;
// each waits for its dependencies first (in the background with detach,
// the op then ending there). It returns each one's error. warmup_delay
// separates the groups; ctx ending or shutdown cuts it short.
func (s *Supervisor) startOps(ctx context.Context, b batch, wait, detach bool) map[*op]error {
	errs := map[*op]error{}
	if detach {
		// Those whose dependencies are not reached yet wait in the
		// background from now on (shown as waiting), each starting once
		// its dependencies are; the others start in order below.
		var now batch
		for _, o := range b {
			if s.depsReached(o.e) {
				now = append(now, o)
			} else if err := s.startOne(o, wait, true); err != nil {
				errs[o] = err
			}
		}
		b = now
	}
	groups := s.groups(b)
	for i, g := range groups {
		maps.Copy(errs, parallel(g, func(o *op) error { return s.startOne(o, wait, detach) }))
		s.mu.Lock()
		delay := s.cfg.Daemon.WarmupDelay
		s.mu.Unlock()
		if delay > 0 && i < len(groups)-1 {
			t := time.NewTimer(delay)
			var cut error
			select {
			case <-t.C:
			case <-ctx.Done():
				cut = ctx.Err()
			case <-s.life.Done():
				cut = ErrShuttingDown
			}
			t.Stop()
			if cut != nil {
				for _, rest := range groups[i+1:] {
					for _, o := range rest {
						errs[o] = fmt.Errorf("%s: not started: %w", o.e.name, cut)
					}
				}
				return errs
			}
		}
	}
	return errs
}

// stopOps stops the watchers of b, groups in reverse start order, a
// group in parallel, and returns each one's error.
func (s *Supervisor) stopOps(b batch) map[*op]error {
	s.cancelWait(b)
	errs := map[*op]error{}
	groups := s.groups(b)
	for i := len(groups) - 1; i >= 0; i-- {
		maps.Copy(errs, parallel(groups[i], func(o *op) error {
			return o.step(func(ctx context.Context) error { return o.e.w.Stop(ctx, true) })
		}))
	}
	return errs
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

// background runs fn (the rest of a command whose caller does not wait)
// in a tracked goroutine that ends b; fn's error is logged.
func (s *Supervisor) background(what string, ns []string, b batch, fn func() error) error {
	for _, o := range b {
		s.detach(o)
	}
	ok := s.goTracked(func() {
		defer func() {
			for _, o := range b {
				o.finish()
			}
		}()
		if err := fn(); err != nil && !cutShort(err) {
			s.log.Warn(what+" failed", "watchers", strings.Join(ns, ","), "err", err)
		}
	})
	if !ok {
		for _, o := range b {
			o.finish()
		}
		return ErrShuttingDown
	}
	return nil
}

// Start starts the named watchers in dependency then priority order,
// with their stopped dependencies (recursively) first; each waits for
// its dependencies' conditions.
func (s *Supervisor) Start(ctx context.Context, names []string, wait bool) ([]string, error) {
	ns, err := s.Match(names)
	if err != nil {
		return nil, err
	}
	b, err := s.beginStart(ctx, s.entries(ns), !wait)
	if err != nil {
		return nil, err
	}
	defer b.end()
	return ns, joinErrs(s.startOps(ctx, b, wait, !wait))
}

// Stop stops the named watchers in reverse priority order.
func (s *Supervisor) Stop(ctx context.Context, names []string, wait bool) ([]string, error) {
	ns, err := s.Match(names)
	if err != nil {
		return nil, err
	}
	if !wait {
		ctx = context.Background()
	}
	b, err := s.beginAll(ctx, s.entries(ns), false)
	if err != nil {
		return nil, err
	}
	if !wait {
		return ns, s.background("stop", ns, b, func() error { return joinErrs(s.stopOps(b)) })
	}
	defer b.end()
	return ns, joinErrs(s.stopOps(b))
}

// Restart stops the named watchers (reverse priority), then starts them
// with their stopped dependencies (dependency then priority order), as
// Start does.
func (s *Supervisor) Restart(ctx context.Context, names []string, wait bool) ([]string, error) {
	ns, err := s.Match(names)
	if err != nil {
		return nil, err
	}
	if !wait {
		ctx = context.Background()
	}
	es := s.entries(ns)
	b, err := s.beginStart(ctx, es, false)
	if err != nil {
		return nil, err
	}
	explicit := b[:len(es):len(es)] // beginStart puts es first, dependencies after
	run := func() error {
		if err := joinErrs(s.stopOps(explicit)); err != nil {
			return err
		}
		return joinErrs(s.startOps(ctx, b, true, false))
	}
	if !wait {
		return ns, s.background("restart", ns, b, run)
	}
	defer b.end()
	return ns, run()
}

// Reload gracefully replaces the processes of the named watchers.
func (s *Supervisor) Reload(ctx context.Context, names []string, wait bool) ([]string, error) {
	ns, err := s.Match(names)
	if err != nil {
		return nil, err
	}
	if !wait {
		ctx = context.Background()
	}
	b, err := s.beginAll(ctx, s.entries(ns), true)
	if err != nil {
		return nil, err
	}
	reload := func(o *op) error {
		return o.step(func(ctx context.Context) error { return o.e.w.Reload(ctx, true) })
	}
	if !wait {
		// All at once, as each watcher's own background reload did.
		return ns, s.background("reload", ns, b, func() error {
			s.reloading(ns, true)
			defer s.reloading(ns, false)
			return joinErrs(parallel(b, reload))
		})
	}
	defer b.end()
	s.reloading(ns, true)
	defer s.reloading(ns, false)
	errs := map[*op]error{}
	for _, g := range s.groups(b) {
		maps.Copy(errs, parallel(g, reload))
	}
	return ns, joinErrs(errs)
}

// Signal sends sig to a watcher's processes (also during shutdown: an
// operator may hurry a stuck stop).
func (s *Supervisor) Signal(name, sig string, pid int, children bool) error {
	e, err := s.get(name)
	if err != nil {
		return err
	}
	canon, err := config.ParseSignal(sig)
	if err != nil {
		return err
	}
	return s.quick(e, false, func() error { return e.w.Signal(canon, pid, children) })
}

// SignalAll sends sig to every running process group (SIGUSR2/SIGWINCH
// forwarding).
func (s *Supervisor) SignalAll(sig string) {
	for _, e := range s.allEntries() {
		e.w.Signal(sig, 0, true)
	}
}

// allEntries returns every watcher's entry.
func (s *Supervisor) allEntries() []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	es := make([]*entry, 0, len(s.watchers))
	for _, e := range s.watchers {
		es = append(es, e)
	}
	return es
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
	var c int
	err = s.quick(e, true, func() error {
		if !wc.Singleton {
			c, err = e.w.IncrMax(n, config.MaxProcesses)
			return err
		}
		if c, err = e.w.IncrMax(n, 1); err != nil {
			return fmt.Errorf("%s is a singleton: it runs at most one process (%w)", name, watcher.ErrTooManyProcesses)
		}
		return nil
	})
	return c, err
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

// Commands on one watcher (DESIGN.md "Commands and shutdown"). Every
// mutation from outside — ctl/rpc2 start, stop, restart, reload, incr,
// signal, a config apply, a dependency start, shutdown — goes through the
// watcher's lane:
//
//   - a command begins (begin): it is numbered and records whether it
//     wants the processes up or down. A command that wants the opposite
//     of the previous one supersedes every command still in flight: their
//     waits are cancelled and none of their remaining steps runs. So the
//     last command begun decides the final state.
//   - each step that calls the watcher (step) holds the lane's run lock,
//     waits included, and first checks that its command is still current.
//     Steps of different commands never interleave.
//   - single calls that change no wanted state (incr, signal, a config
//     update in place) take only the lane's mutex (quick), never wait
//     behind a long step, and are ordered by the watcher itself.
//   - once shutdown begins no command begins, every one in flight is
//     cancelled, and only shutdown's own stops (final) run.

// ErrShuttingDown is returned for a command that arrives once shutdown
// has begun, or that shutdown cut short.
var ErrShuttingDown = errors.New("circled is shutting down")

// ErrSuperseded is returned (wrapped) by a command that a later command
// on the same watcher, wanting the opposite, cut short.
var ErrSuperseded = errors.New("superseded by a later command")

// lane orders the commands that change one watcher.
type lane struct {
	run sync.Mutex // held by a command's step, its waits included

	mu      sync.Mutex
	gen     uint64 // commands begun
	turn    uint64 // gen of the last command that changed want
	want    bool   // the last command begun wants the processes up
	removed bool   // gone from the config: nothing begins
	live    map[uint64]context.CancelCauseFunc
}

// op is one command in flight on a watcher.
type op struct {
	e      *entry
	gen    uint64
	final  bool // shutdown's or removal's stop: never superseded
	ctx    context.Context
	cancel context.CancelCauseFunc
	handed bool // a background goroutine ends it (detach)
}

// begin starts a command on e that wants the processes up (or down).
func (s *Supervisor) begin(ctx context.Context, e *entry, up bool) (*op, error) {
	o, _, err := s.beginIf(ctx, e, up, nil)
	return o, err
}

// beginIf is begin when cond, called with the lane's state (whether the
// last command wants the processes up), holds; otherwise it returns
// ok = false and begins nothing.
func (s *Supervisor) beginIf(ctx context.Context, e *entry, up bool, cond func(wantUp bool) bool) (o *op, ok bool, err error) {
	l := &e.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.removed {
		return nil, false, fmt.Errorf("%w: %s", ErrNoSuchWatcher, e.name)
	}
	if s.closing.Load() {
		return nil, false, ErrShuttingDown
	}
	if cond != nil && !cond(l.want) {
		return nil, false, nil
	}
	l.gen++
	if up != l.want {
		l.turn = l.gen
		for _, c := range l.live {
			c(ErrSuperseded)
		}
	}
	l.want = up
	o = &op{e: e, gen: l.gen}
	o.ctx, o.cancel = context.WithCancelCause(ctx)
	if l.live == nil {
		l.live = map[uint64]context.CancelCauseFunc{}
	}
	l.live[o.gen] = o.cancel
	return o, true, nil
}

// beginFinal starts shutdown's stop of e, or (removed) the stop of a
// watcher gone from the config: it cancels every command in flight,
// nothing supersedes it, and with removed nothing begins on e after it.
func (s *Supervisor) beginFinal(ctx context.Context, e *entry, removed bool) *op {
	l := &e.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	l.turn = l.gen
	l.want = false
	l.removed = l.removed || removed
	cause := ErrShuttingDown
	if removed {
		cause = fmt.Errorf("%w: %s was removed from the config", ErrSuperseded, e.name)
	}
	for _, c := range l.live {
		c(cause)
	}
	o := &op{e: e, gen: l.gen, final: true}
	o.ctx, o.cancel = context.WithCancelCause(ctx)
	return o
}

// err says why o may not go on: a later command turned the lane, shutdown
// began, or o's context ended.
func (o *op) err() error {
	l := &o.e.lane
	l.mu.Lock()
	turned := l.turn > o.gen
	l.mu.Unlock()
	if turned {
		return fmt.Errorf("%s: %w", o.e.name, ErrSuperseded)
	}
	if o.ctx.Err() != nil {
		return fmt.Errorf("%s: %w", o.e.name, context.Cause(o.ctx))
	}
	return nil
}

// step runs fn, a call of o's watcher, after the step of every command
// begun before o, unless o was superseded or cancelled meanwhile.
func (o *op) step(fn func(ctx context.Context) error) error {
	l := &o.e.lane
	l.run.Lock()
	defer l.run.Unlock()
	if err := o.err(); err != nil {
		return err
	}
	err := fn(o.ctx)
	if err != nil && o.ctx.Err() != nil {
		if cut := o.err(); cut != nil {
			return cut
		}
	}
	return err
}

// abort cancels o's waits with cause.
func (o *op) abort(cause error) {
	l := &o.e.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	o.cancel(cause)
}

// detach hands o to a background goroutine: its context no longer ends
// with its caller's (a request's), only when superseded or at shutdown.
func (s *Supervisor) detach(o *op) {
	l := &o.e.lane
	ctx, cancel := context.WithCancelCause(context.Background())
	l.mu.Lock()
	old := o.cancel
	o.ctx, o.cancel, o.handed = ctx, cancel, true
	if !o.final {
		l.live[o.gen] = cancel
	}
	if s.closing.Load() {
		cancel(ErrShuttingDown)
	}
	if l.turn > o.gen {
		cancel(ErrSuperseded)
	}
	l.mu.Unlock()
	old(nil)
}

// end finishes o unless it was handed to a background goroutine (which
// calls finish).
func (o *op) end() {
	if !o.handed {
		o.finish()
	}
}

func (o *op) finish() {
	l := &o.e.lane
	l.mu.Lock()
	if !o.final {
		delete(l.live, o.gen)
	}
	l.mu.Unlock()
	o.cancel(nil)
}

// quick runs fn, a single call of e's watcher that changes no wanted
// state, ordered against commands beginning; refused for a removed
// watcher and, with refuseClosing, once shutdown began.
func (s *Supervisor) quick(e *entry, refuseClosing bool, fn func() error) error {
	l := &e.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.removed {
		return fmt.Errorf("%w: %s", ErrNoSuchWatcher, e.name)
	}
	if refuseClosing && s.closing.Load() {
		return ErrShuttingDown
	}
	return fn()
}

// isRemoved reports whether e is gone from the config (its final stop
// began: nothing begins on it).
func (e *entry) isRemoved() bool {
	e.lane.mu.Lock()
	defer e.lane.mu.Unlock()
	return e.lane.removed
}

// dropWatcher releases what a stopped watcher held once it is gone (a
// removed watcher after its final stop, every watcher when the
// supervisor closes): the watcher's goroutines and timers, and its
// limit cgroups.
func (s *Supervisor) dropWatcher(e *entry) {
	e.w.Close()
	s.evWatcherDropped(e.cfg)
	s.closeLimits(e.name)
}

// wanted reports whether the last command begun on e wants it up.
func (e *entry) wanted() bool {
	e.lane.mu.Lock()
	defer e.lane.mu.Unlock()
	return e.lane.want
}

// batch is one command's ops on several watchers.
type batch []*op

func (b batch) end() {
	for _, o := range b {
		o.end()
	}
}

func (b batch) entries() []*entry {
	es := make([]*entry, len(b))
	for i, o := range b {
		es[i] = o.e
	}
	return es
}

// beginAll begins a command wanting up (or down) on each of es; on an
// error it ends those begun.
func (s *Supervisor) beginAll(ctx context.Context, es []*entry, up bool) (batch, error) {
	b := make(batch, 0, len(es))
	for _, e := range es {
		o, err := s.begin(ctx, e, up)
		if err != nil {
			b.end()
			return nil, err
		}
		b = append(b, o)
	}
	return b, nil
}

// goTracked runs fn in a goroutine that shutdown waits for; once
// shutdown waited it runs nothing and returns false.
func (s *Supervisor) goTracked(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bgClosed {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn()
	}()
	return true
}

// beginShutdown refuses every command from now on and cancels those in
// flight, and the reload in progress.
func (s *Supervisor) beginShutdown() {
	s.closing.Store(true)
	s.endLife()
	for _, e := range s.allEntries() {
		e.lane.mu.Lock()
		for _, c := range e.lane.live {
			c(ErrShuttingDown)
		}
		e.lane.mu.Unlock()
	}
}

// waitTracked waits for every goroutine goTracked started (they were
// cancelled) and starts no more.
func (s *Supervisor) waitTracked() {
	s.mu.Lock()
	s.bgClosed = true
	s.mu.Unlock()
	s.bg.Wait()
}

// cutShort reports whether err means a later command or shutdown cut the
// command short (not a failure of the watcher).
func cutShort(err error) bool {
	return errors.Is(err, ErrSuperseded) || errors.Is(err, ErrShuttingDown)
}
