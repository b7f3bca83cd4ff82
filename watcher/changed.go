package watcher

// Changed returns a channel that is closed at the watcher's next change
// (a process started, exited or changed state, the watcher's state
// changed, a reload or scale). Take it, read Status, then wait on it:
// whatever changes after the channel was taken closes it, so no change
// is missed between the Status and the wait. Nothing is sent while
// nothing changes.
func (w *Watcher) Changed() <-chan struct{} {
	w.chMu.Lock()
	defer w.chMu.Unlock()
	return w.changed
}
