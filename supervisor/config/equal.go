package config

import (
	"reflect"
	"slices"
	"strings"
)

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
	// A socket is the same socket wherever its section is.
	if len(c.Sockets) == 0 {
		c.Sockets = nil
	} else {
		c.Sockets = slices.Clone(c.Sockets)
		for i := range c.Sockets {
			c.Sockets[i].File, c.Sockets[i].Line = "", 0
		}
	}
	if len(c.EnvFiles) == 0 {
		c.EnvFiles = nil
	}
	return c
}

// EqualExceptLive is Equal ignoring the fields of the watcher keys a
// reload applies without restarting processes (KeyInfo.Live:
// numprocesses, graceful_timeout, stop_signal, priority, the restart
// policy and flapping settings, ...): when it holds, a reload updates the
// watcher in place.
func (w *Watcher) EqualExceptLive(o *Watcher) bool {
	if w == nil || o == nil {
		return w == o
	}
	a, b := normalized(w), normalized(o)
	for _, f := range liveWatcherFields() {
		zeroField(reflect.ValueOf(&a).Elem(), f)
		zeroField(reflect.ValueOf(&b).Elem(), f)
	}
	return reflect.DeepEqual(a, b)
}

// zeroField zeroes the field at path ("Flapping.Window") of struct v.
func zeroField(v reflect.Value, path string) {
	for _, name := range strings.Split(path, ".") {
		v = v.FieldByName(name)
	}
	v.Set(reflect.Zero(v.Type()))
}
