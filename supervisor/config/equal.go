package config

import "reflect"

// Equal reports whether w and o would run the same processes the same way.
// File and Line are ignored: moving a section is not a change; so are
// group names (GroupNames).
func (w *Watcher) Equal(o *Watcher) bool {
	if w == nil || o == nil {
		return w == o
	}
	return reflect.DeepEqual(normalized(w), normalized(o))
}

// EqualExceptNumProcesses is Equal ignoring NumProcesses, so that a reload
// can scale a watcher instead of restarting it.
func (w *Watcher) EqualExceptNumProcesses(o *Watcher) bool {
	if w == nil || o == nil {
		return w == o
	}
	a, b := normalized(w), normalized(o)
	a.NumProcesses, b.NumProcesses = 0, 0
	return reflect.DeepEqual(a, b)
}

func normalized(w *Watcher) Watcher {
	c := *w
	c.File, c.Line = "", 0
	c.GroupNames = nil // a renamed group is still the same gid
	if len(c.Argv) == 0 {
		c.Argv = nil
	}
	if len(c.Env) == 0 {
		c.Env = nil
	}
	if len(c.Rlimits) == 0 {
		c.Rlimits = nil
	}
	return c
}
