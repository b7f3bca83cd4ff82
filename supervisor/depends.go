package supervisor

import (
	"context"
	"fmt"
	"strings"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// Dependencies (depends_on, issue 15): a watcher starts only once each
// of its dependencies has reached its condition (started, ready or
// completed). Start order follows the dependency graph (its level),
// then priority; stops run in reverse, so dependents stop before their
// dependencies.

// depWait is a watcher waiting for its dependencies before it starts.
type depWait struct {
	reason string
	op     *op // the start that waits
}

// levelsLocked returns each watcher's depth in the dependency graph: 0
// without dependencies, else one more than its deepest dependency. The
// config rejects cycles; a guard keeps a bad graph from looping.
func (s *Supervisor) levelsLocked() map[string]int {
	lv := map[string]int{}
	var depth func(n string, seen int) int
	depth = func(n string, seen int) int {
		if l, ok := lv[n]; ok {
			return l
		}
		e := s.watchers[n]
		if e == nil || seen > len(s.watchers) {
			return 0
		}
		l := 0
		for _, d := range e.cfg.DependsOn {
			if dl := depth(d.Name, seen+1) + 1; dl > l {
				l = dl
			}
		}
		lv[n] = l
		return l
	}
	for n := range s.watchers {
		depth(n, 0)
	}
	return lv
}

// failedOneShot reports whether why (from Reached) says a one-shot
// exited unsuccessfully: a completed dependency that will not complete
// unless started again.
func failedOneShot(cond, why string) bool {
	return cond == config.DependCompleted && (strings.HasPrefix(why, "exited with code") || strings.HasPrefix(why, "killed by signal"))
}

// waitDeps waits until every dependency of e reached its condition,
// showing the watcher as waiting meanwhile. With failFast a failed
// one-shot dependency returns an error at once; otherwise it blocks (the
// status says why) until it is started again and completes.
func (s *Supervisor) waitDeps(ctx context.Context, e *entry, failFast bool) error {
	s.mu.Lock()
	deps := e.cfg.DependsOn
	name := e.cfg.Name
	s.mu.Unlock()
	defer s.setWaiting(name, "")
	for _, d := range deps {
		s.mu.Lock()
		de := s.watchers[d.Name]
		s.mu.Unlock()
		if de == nil {
			return fmt.Errorf("%s: dependency %s does not exist", name, d.Name)
		}
		for {
			ch := de.w.Changed()
			ok, why := de.w.Reached(d.Condition)
			if ok {
				break
			}
			reason := fmt.Sprintf("waiting for %s (%s): %s", d.Name, d.Condition, why)
			if failedOneShot(d.Condition, why) {
				reason = fmt.Sprintf("blocked: dependency %s (%s) failed: %s", d.Name, d.Condition, why)
				if failFast {
					return fmt.Errorf("%s: %s", name, reason)
				}
			}
			s.setWaiting(name, reason)
			select {
			case <-ch:
			case <-ctx.Done():
				return fmt.Errorf("%s: not started (%s): %w", name, reason, context.Cause(ctx))
			case <-s.quit:
				return fmt.Errorf("%s: not started (%s): shutting down", name, reason)
			}
		}
	}
	return nil
}

func (s *Supervisor) setWaiting(name, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.waiting[name]; w != nil {
		w.reason = reason
	}
}

// depsReached reports whether every dependency of e has reached its
// condition now.
func (s *Supervisor) depsReached(e *entry) bool {
	s.mu.Lock()
	deps := e.cfg.DependsOn
	s.mu.Unlock()
	for _, d := range deps {
		s.mu.Lock()
		de := s.watchers[d.Name]
		s.mu.Unlock()
		if de == nil {
			return false
		}
		if ok, _ := de.w.Reached(d.Condition); !ok {
			return false
		}
	}
	return true
}

// startOne starts o's watcher once its dependencies are reached. With
// detach (the startup, reloads, start without waiting), a watcher whose
// dependencies are not reached yet waits in the background (until a
// later command supersedes it or shutdown) and startOne returns nil at
// once, so independent watchers are not held up; the background
// goroutine then ends o. Otherwise it waits (cancellable through o) and
// a failed one-shot dependency is an error.
func (s *Supervisor) startOne(o *op, wait, detach bool) error {
	e := o.e
	if s.depsReached(e) {
		return o.step(func(ctx context.Context) error { return e.w.Start(ctx, wait) })
	}
	if detach {
		s.detach(o)
	}
	dw := &depWait{reason: "waiting for dependencies", op: o}
	s.mu.Lock()
	old := s.waiting[e.name]
	s.waiting[e.name] = dw
	s.mu.Unlock()
	if old != nil {
		old.op.abort(ErrSuperseded)
	}
	run := func() error {
		defer func() {
			s.mu.Lock()
			if s.waiting[e.name] == dw {
				delete(s.waiting, e.name)
			}
			s.mu.Unlock()
		}()
		if err := s.waitDeps(o.ctx, e, !detach); err != nil {
			return err
		}
		// The step checks, in order with every other command, that no
		// stop (or shutdown) came meanwhile.
		return o.step(func(ctx context.Context) error { return e.w.Start(ctx, wait && !detach) })
	}
	if !detach {
		return run()
	}
	if !s.goTracked(func() {
		defer o.finish()
		if err := run(); err != nil {
			s.log.Info("dependency wait ended", "watcher", e.name, "err", err)
		}
	}) {
		o.finish()
	}
	return nil
}

// cancelWait ends the dependency waits of b's watchers (they are being
// stopped).
func (s *Supervisor) cancelWait(b batch) {
	var ended []*op
	s.mu.Lock()
	for _, o := range b {
		if w := s.waiting[o.e.name]; w != nil {
			ended = append(ended, w.op)
			delete(s.waiting, o.e.name)
		}
	}
	s.mu.Unlock()
	for _, o := range ended { // not under s.mu: a lane's lock comes first
		o.abort(ErrSuperseded)
	}
}

// waitingReason returns why name waits for its dependencies ("" when it
// does not).
func (s *Supervisor) waitingReason(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.waiting[name]; w != nil {
		return w.reason
	}
	return ""
}
