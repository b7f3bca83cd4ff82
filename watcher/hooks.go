package watcher

import "fmt"

// hook runs the spec's Hook at ev.Point in a goroutine of its own (Close
// waits for it and cancels its context); then, when not nil, gets its
// error as a message on the owner. Called on the owner.
func (w *Watcher) hook(ev HookEvent, then func(error)) {
	w.runHook(w.specP, ev, then)
}

// runHook is hook with the spec given (spawn workers hold their own).
func (w *Watcher) runHook(spec *Spec, ev HookEvent, then func(error)) {
	h := spec.Hook
	if h == nil {
		if then != nil {
			w.post(func() { then(nil) })
		}
		return
	}
	ev.Watcher = spec.Name
	ctx := w.o.ctx
	w.goTracked(func() {
		err := h(ctx, ev)
		if err != nil && then == nil {
			w.log.Warn("hook failed", "hook", ev.Point, "wid", ev.WID, "pid", ev.PID, "err", err)
		}
		if then != nil {
			w.post(func() { then(err) })
		}
	})
}

// hookErr is the error of a start a Before* hook vetoed.
func hookErr(pt HookPoint, err error) error {
	return fmt.Errorf("%s hook: %w", pt, err)
}
