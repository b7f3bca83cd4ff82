package supervisor

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/watcher"
)

// ReloadSummary says what a config reload did.
type ReloadSummary struct {
	Added, Removed, Restarted, Scaled, Updated, Unchanged []string
	// NeedRestart lists [circled] keys that changed but apply only when
	// circled restarts.
	NeedRestart []string
	// Failed maps each watcher the reload restarted or started that did
	// not come up to why: its stop or start returned an error (a spawn
	// error, flapping, ...) or it is fatal afterwards. Such a watcher
	// still has the new config (and is also listed in Added or
	// Restarted). Nil when every watcher applied.
	Failed map[string]string
}

func (r ReloadSummary) String() string {
	f := func(l []string) string {
		if len(l) == 0 {
			return "-"
		}
		return strings.Join(l, ",")
	}
	s := fmt.Sprintf("added=%s removed=%s restarted=%s scaled=%s updated=%s unchanged=%d",
		f(r.Added), f(r.Removed), f(r.Restarted), f(r.Scaled), f(r.Updated), len(r.Unchanged))
	if len(r.NeedRestart) > 0 {
		s += " need-restart=" + f(r.NeedRestart)
	}
	if len(r.Failed) > 0 {
		s += " failed=" + f(slices.Sorted(maps.Keys(r.Failed)))
	}
	return s
}

// ReloadConfig re-reads the config from the main file: parse and validate
// everything first; on error the running config stays, the error is kept
// for status and returned (wrapping ErrBadConfig). Otherwise the new
// config is applied watcher by watcher: added ones start (autostart),
// removed ones stop, scale-only changes scale in place, process changes
// restart that watcher, anything else updates in place. SIGHUP, ctl and
// the directory watch all come here.
func (s *Supervisor) ReloadConfig(ctx context.Context) (ReloadSummary, error) {
	sum, _, err := s.reload(ctx, false)
	return sum, err
}

// reload wraps doReload: every reload applied or refused is counted and
// published as an event.
func (s *Supervisor) reload(ctx context.Context, onlyIfChanged bool) (sum ReloadSummary, applied bool, err error) {
	sum, applied, err = s.doReload(ctx, onlyIfChanged)
	if applied || err != nil {
		s.configReloaded(&sum, err)
	}
	return sum, applied, err
}

// reload is ReloadConfig; with onlyIfChanged (the directory watch) it
// does nothing when every file it would read has the bytes the running
// config was read from, and reports applied = false.
func (s *Supervisor) doReload(ctx context.Context, onlyIfChanged bool) (sum ReloadSummary, applied bool, err error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	old := s.Config()
	cfg, err := config.Load(old.File, config.Options{Environ: s.opts.Environ})
	if err != nil {
		s.mu.Lock()
		s.lastReloadErr = err.Error()
		s.mu.Unlock()
		s.log.Error("config reload failed; running config kept", "err", err)
		return ReloadSummary{}, false, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	snap := snapshot(cfg.Files)
	s.mu.Lock()
	same := sameSnap(snap, s.snap)
	s.snap = snap
	// Valid again (a typo undone counts): no error stands.
	s.lastReloadErr = ""
	s.mu.Unlock()
	if same && onlyIfChanged {
		return ReloadSummary{}, false, nil
	}
	s.opts.OnReloading()
	defer s.opts.OnReady()
	for _, w := range cfg.Warnings {
		s.log.Warn("config", "warning", w.String())
	}
	sum = s.apply(ctx, old, cfg)
	if len(sum.Failed) > 0 {
		args := []any{"summary", sum.String()}
		for _, n := range slices.Sorted(maps.Keys(sum.Failed)) {
			args = append(args, n, sum.Failed[n])
		}
		s.log.Error("config reloaded, but some watchers failed to apply", args...)
	} else {
		s.log.Info("config reloaded", "summary", sum.String())
	}
	return sum, true, nil
}

// apply switches from old to cfg. Called with opMu held.
func (s *Supervisor) apply(ctx context.Context, old, cfg *config.Config) ReloadSummary {
	var sum ReloadSummary
	sum.NeedRestart = needRestart(old.Daemon, cfg.Daemon)
	s.applyDaemon(cfg.Daemon)

	newByName := map[string]*config.Watcher{}
	for _, w := range cfg.Watchers {
		newByName[w.Name] = w
	}
	s.mu.Lock()
	var removed []*entry
	for name, e := range s.watchers {
		if newByName[name] == nil {
			removed = append(removed, e)
			sum.Removed = append(sum.Removed, name)
		}
	}
	s.mu.Unlock()

	// Removed watchers stop first, lowest priority first.
	s.stopGroups(ctx, namesOf(removed))
	s.mu.Lock()
	for _, e := range removed {
		delete(s.watchers, e.cfg.Name)
		s.unobserve(e.cfg.Name)
	}
	s.cfg = cfg
	s.mu.Unlock()
	if len(removed) > 0 {
		// Their last lines reach their files; bounded, since an escaped
		// grandchild may hold a pipe open (its file then stays open).
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		for _, e := range removed {
			e.w.WaitOutput(octx)
		}
		cancel()
	}
	for _, e := range removed {
		s.closeRing(e.cfg.Name) // ends `logs -f` of removed watchers
	}
	s.files.CloseUnused() // the log files only removed watchers wrote

	var toStart, toRestart []*entry
	for _, wc := range cfg.Watchers { // already in priority order
		s.mu.Lock()
		e := s.watchers[wc.Name]
		s.mu.Unlock()
		switch {
		case e == nil:
			e = s.newEntry(wc, cfg.Daemon)
			s.mu.Lock()
			s.watchers[wc.Name] = e
			s.mu.Unlock()
			sum.Added = append(sum.Added, wc.Name)
			if wc.Autostart {
				toStart = append(toStart, e)
			}
		case e.cfg.Equal(wc) && old.Daemon.Umask == cfg.Daemon.Umask:
			s.setCfg(e, wc)
			sum.Unchanged = append(sum.Unchanged, wc.Name)
		case e.cfg.EqualExceptNumProcesses(wc) && old.Daemon.Umask == cfg.Daemon.Umask:
			s.setCfg(e, wc)
			e.w.Update(s.spec(wc, cfg.Daemon))
			sum.Scaled = append(sum.Scaled, wc.Name)
		case sameProcess(e.cfg, wc) && old.Daemon.Umask == cfg.Daemon.Umask:
			s.setCfg(e, wc)
			e.w.Update(s.spec(wc, cfg.Daemon))
			sum.Updated = append(sum.Updated, wc.Name)
		default:
			s.setCfg(e, wc)
			e.w.Update(s.spec(wc, cfg.Daemon))
			sum.Restarted = append(sum.Restarted, wc.Name)
			// A watcher the operator stopped stays stopped: it gets the new
			// config for its next start (supervisord's update starts it).
			if e.w.Wanted() {
				toRestart = append(toRestart, e)
			}
		}
	}
	// Restarts stop in reverse priority, then everything starts in
	// priority order. A watcher whose stop or start fails, or that is
	// fatal once started, is reported in Failed.
	failed := &failures{}
	s.reloading(namesOf(toRestart), true)
	defer s.reloading(namesOf(toRestart), false)
	stopErrs := s.stopEach(ctx, toRestart)
	for _, e := range toRestart {
		if err := stopErrs[e]; err != nil {
			failed.add(e.cfg.Name, fmt.Sprintf("stop: %v", err))
		}
	}
	startErrs := s.startEach(ctx, append(toRestart, toStart...))
	for _, e := range append(toRestart, toStart...) {
		if err := startErrs[e]; err != nil {
			failed.add(e.cfg.Name, err.Error())
		} else if st := e.w.Status(); st.State == watcher.StateFatal {
			failed.add(e.cfg.Name, fmt.Sprintf("%s is fatal: %s", e.cfg.Name, st.Error))
		}
	}
	sum.Failed = failed.m
	return sum
}

// failures collects per-watcher failures; m stays nil when there is none.
type failures struct{ m map[string]string }

func (f *failures) add(name, msg string) {
	if f.m == nil {
		f.m = map[string]string{}
	}
	if prev, ok := f.m[name]; ok {
		msg = prev + "; " + msg
	}
	f.m[name] = msg
}

// stopEach stops es as stopGroups does (reverse priority, a group in
// parallel) and returns each one's error.
func (s *Supervisor) stopEach(ctx context.Context, es []*entry) map[*entry]error {
	errs := newErrMap()
	s.cancelWait(namesOf(es))
	groups := s.groups(namesOf(es))
	for i := len(groups) - 1; i >= 0; i-- {
		parallel(groups[i], func(e *entry) error { errs.set(e, e.w.Stop(ctx, true)); return nil })
	}
	return errs.m
}

// startEach starts es and waits, as startGroups does (priority order, a
// group in parallel, warmup_delay between groups), and returns each
// one's error. A cancelled ctx fails those not started yet.
func (s *Supervisor) startEach(ctx context.Context, es []*entry) map[*entry]error {
	errs := newErrMap()
	groups := s.groups(namesOf(es))
	for i, g := range groups {
		parallel(g, func(e *entry) error { errs.set(e, s.startOne(ctx, e, true, true)); return nil })
		s.mu.Lock()
		delay := s.cfg.Daemon.WarmupDelay
		s.mu.Unlock()
		if delay > 0 && i < len(groups)-1 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				for _, rest := range groups[i+1:] {
					for _, e := range rest {
						errs.set(e, fmt.Errorf("not started: %w", ctx.Err()))
					}
				}
				return errs.m
			}
		}
	}
	return errs.m
}

type errMap struct {
	mu sync.Mutex
	m  map[*entry]error
}

func newErrMap() *errMap { return &errMap{m: map[*entry]error{}} }

func (m *errMap) set(e *entry, err error) {
	if err == nil {
		return
	}
	m.mu.Lock()
	m.m[e] = err
	m.mu.Unlock()
}

// setCfg replaces an entry's config; readers outside opMu hold s.mu.
func (s *Supervisor) setCfg(e *entry, wc *config.Watcher) {
	s.mu.Lock()
	e.cfg = wc
	s.mu.Unlock()
}

func namesOf(es []*entry) []string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.cfg.Name
	}
	return names
}

// needRestart lists the [circled] keys that changed and cannot apply
// without restarting circled: config's key table says which apply live
// (a test pins that every field of config.Daemon has a key there).
func needRestart(old, cur config.Daemon) []string {
	o, c := reflect.ValueOf(old), reflect.ValueOf(cur)
	var out []string
	for _, k := range config.DaemonKeys() {
		if k.Field == "" || k.Live {
			continue // include/include_dir feed the file list; live keys apply
		}
		if !reflect.DeepEqual(o.FieldByName(k.Field).Interface(), c.FieldByName(k.Field).Interface()) {
			out = append(out, k.Name)
		}
	}
	return out
}
