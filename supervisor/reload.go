package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
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
// the directory watch all come here. Shutdown cancels a reload in
// progress, and once it has begun a reload is refused (ErrShuttingDown).
func (s *Supervisor) ReloadConfig(ctx context.Context) (ReloadSummary, error) {
	sum, _, err := s.reload(ctx, false)
	return sum, err
}

// ReloadConfigAsync is ReloadConfig in a goroutine shutdown waits for
// (SIGHUP): during or after shutdown it does nothing.
func (s *Supervisor) ReloadConfigAsync() {
	s.goTracked(func() { s.ReloadConfig(context.Background()) })
}

// reload wraps doReload: every reload applied or refused is counted and
// published as an event.
func (s *Supervisor) reload(ctx context.Context, onlyIfChanged bool) (sum ReloadSummary, applied bool, err error) {
	sum, applied, err = s.doReload(ctx, onlyIfChanged)
	if applied || (err != nil && !errors.Is(err, ErrShuttingDown)) {
		s.configReloaded(&sum, err)
	}
	return sum, applied, err
}

// reload is ReloadConfig; with onlyIfChanged (the directory watch) it
// does nothing when every file it would read has the bytes the running
// config was read from, and reports applied = false.
func (s *Supervisor) doReload(ctx context.Context, onlyIfChanged bool) (sum ReloadSummary, applied bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(s.life, func() { cancel(ErrShuttingDown) })()
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.closing.Load() {
		return ReloadSummary{}, false, ErrShuttingDown
	}
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
	// Sockets first: a changed one's watchers get its new descriptor with
	// their new spec below; an unchanged one stays open.
	s.updateSockets(cfg)

	s.mu.Lock()
	var removed []*entry
	for name, e := range s.watchers {
		// A removed watcher kept because its stop failed is stopped
		// again, even if the new config has a watcher of its name (that
		// one starts afresh once the old one is gone).
		if newByName[name] == nil || e.isRemoved() {
			removed = append(removed, e)
			if newByName[name] == nil {
				sum.Removed = append(sum.Removed, name)
			}
		}
	}
	s.mu.Unlock()

	// Removed watchers stop first, lowest priority first; nothing begins
	// on them any more. Their stop does not depend on the request: a
	// client that gave up (its context ended, e.g. while another reload
	// held opMu) must not leave them running unmanaged. Only shutdown
	// cuts it short (and then stops them itself).
	rm := make(batch, len(removed))
	for i, e := range removed {
		rm[i] = s.beginFinal(s.life, e, true)
	}
	stopErrs := s.stopOps(rm)
	rm.end()
	if s.closing.Load() {
		// Cut short: the shutdown stops them (and everything else).
		return sum
	}
	var gone []*entry
	var notStopped []*op
	s.mu.Lock()
	for _, o := range rm {
		if err := stopErrs[o]; err != nil {
			// Kept (removed in its lane: nothing begins on it), so the
			// next reload tries its stop again and shutdown stops it.
			s.log.Error("removed watcher did not stop; kept until it does", "watcher", o.e.name, "err", err)
			notStopped = append(notStopped, o)
			continue
		}
		delete(s.watchers, o.e.name)
		s.unobserve(o.e.name)
		gone = append(gone, o.e)
	}
	s.cfg = cfg
	s.mu.Unlock()
	removed = gone
	if len(removed) > 0 {
		// Their last lines reach their files; bounded, since an escaped
		// grandchild may hold a pipe open (its file then stays open).
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		for _, e := range removed {
			e.w.WaitOutput(octx)
		}
		cancel()
	}
	for _, e := range removed {
		s.closeRing(e.cfg.Name) // ends `logs -f` of removed watchers
		s.dropWatcher(e)
	}
	s.files.CloseUnused() // the log files only removed watchers wrote

	var toStart, toRestart batch
	defer func() { toStart.end(); toRestart.end() }()
	failed := &failures{}
	for _, o := range notStopped {
		failed.add(o.e.name, fmt.Sprintf("removed, but its stop failed (kept until it stops): %v", stopErrs[o]))
	}
	for _, wc := range cfg.Watchers { // already in priority order
		s.mu.Lock()
		e := s.watchers[wc.Name]
		s.mu.Unlock()
		switch {
		case e != nil && e.isRemoved():
			// The old watcher of this name did not stop (above).
			failed.add(wc.Name, "the removed watcher of the same name did not stop: not started")
		case e == nil:
			e = s.newEntry(wc, cfg.Daemon)
			s.mu.Lock()
			s.watchers[wc.Name] = e
			s.mu.Unlock()
			sum.Added = append(sum.Added, wc.Name)
			if !wc.Autostart {
				break
			}
			if o, err := s.begin(ctx, e, true); err == nil {
				toStart = append(toStart, o)
			}
		case e.cfg.Equal(wc) && old.Daemon.Umask == cfg.Daemon.Umask:
			s.setCfg(e, wc)
			sum.Unchanged = append(sum.Unchanged, wc.Name)
		case e.cfg.EqualExceptNumProcesses(wc) && old.Daemon.Umask == cfg.Daemon.Umask:
			s.setCfg(e, wc)
			s.update(e, wc, cfg.Daemon)
			sum.Scaled = append(sum.Scaled, wc.Name)
		case sameProcess(e.cfg, wc) && old.Daemon.Umask == cfg.Daemon.Umask:
			s.setCfg(e, wc)
			s.update(e, wc, cfg.Daemon)
			sum.Updated = append(sum.Updated, wc.Name)
		default:
			s.setCfg(e, wc)
			s.update(e, wc, cfg.Daemon)
			sum.Restarted = append(sum.Restarted, wc.Name)
			// A watcher the operator stopped stays stopped: it gets the new
			// config for its next start (supervisord's update starts it).
			// Decided in its lane, so a stop that comes later cuts the
			// restart short and one that came before prevents it.
			if o, ok, err := s.beginIf(ctx, e, true, func(up bool) bool { return up }); ok && err == nil {
				toRestart = append(toRestart, o)
			}
		}
	}
	// Restarts stop in reverse priority, then everything starts in
	// priority order. A watcher whose stop or start fails, or that is
	// fatal once started, is reported in Failed; one a later command or
	// shutdown cut short is not (the later command decides its state).
	rs := namesOf(toRestart.entries())
	s.reloading(rs, true)
	defer s.reloading(rs, false)
	// A watcher that runs is replaced slot by slot, each new process
	// ready before the old one stops (issue 15), in start order; one that
	// does not (fatal, flapping, starting, backoff) is stopped and started.
	var replace, cold batch
	for _, o := range toRestart {
		if o.e.w.Status().State == watcher.StateActive {
			replace = append(replace, o)
		} else {
			cold = append(cold, o)
		}
	}
	// A replacement that fails (the new command does not come up) falls
	// back to stop and start: the old command's processes do not run on
	// under the new config, and the failure shows as it did before.
	for _, g := range s.groups(replace) {
		for o, err := range parallel(g, func(o *op) error {
			return o.step(func(ctx context.Context) error { return o.e.w.Replace(ctx, true) })
		}) {
			if !cutShort(err) {
				failed.add(o.e.name, fmt.Sprintf("replace: %v", err))
				cold = append(cold, o)
			}
		}
	}
	stopErrs = s.stopOps(cold)
	for _, o := range cold {
		if err := stopErrs[o]; err != nil && !cutShort(err) {
			failed.add(o.e.name, fmt.Sprintf("stop: %v", err))
		}
	}
	all := append(cold[:len(cold):len(cold)], toStart...)
	startErrs := s.startOps(ctx, all, true, true)
	for _, o := range all {
		if err := startErrs[o]; err != nil {
			if !cutShort(err) {
				failed.add(o.e.name, err.Error())
			}
		} else if st := o.e.w.Status(); st.State == watcher.StateFatal {
			failed.add(o.e.name, fmt.Sprintf("%s is fatal: %s", o.e.name, st.Error))
		}
	}
	sum.Failed = failed.m
	return sum
}

// update gives e's watcher its new spec (a count applies at once), in
// order with the commands on it.
func (s *Supervisor) update(e *entry, wc *config.Watcher, d config.Daemon) {
	s.quick(e, true, func() error { e.w.Update(s.spec(wc, d)); return nil })
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
