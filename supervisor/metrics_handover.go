package supervisor

import (
	"maps"
	"time"
)

// CountersState is what the metrics counters were when a live upgrade
// handed over (UpgradeState.Counters): the new binary goes on counting
// from there, so circled_process_restarts_total and the other counters
// do not fall back to zero (a counter reset is what a scrape would see
// after a restart of circled, not after an upgrade).
type CountersState struct {
	ReloadsOK     uint64                     `json:"reloads_ok,omitempty"`
	ReloadsFailed uint64                     `json:"reloads_failed,omitempty"`
	LastReloadOK  time.Time                  `json:"last_reload_ok"`
	Watchers      map[string]WatcherCounters `json:"watchers,omitempty"`
}

// WatcherCounters are one watcher's counters.
type WatcherCounters struct {
	Restarts     map[string]uint64 `json:"restarts,omitempty"` // by reason
	Exits        []ExitCount       `json:"exits,omitempty"`
	DroppedBytes int64             `json:"dropped_bytes,omitempty"`
}

// exportCounters copies the counters (PrepareUpgrade).
func (o *obs) exportCounters() *CountersState {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := &CountersState{ReloadsOK: o.reloadOK, ReloadsFailed: o.reloadKO, LastReloadOK: o.lastOK, Watchers: map[string]WatcherCounters{}}
	for name, wo := range o.perW {
		wc := WatcherCounters{Restarts: maps.Clone(wo.restarts), DroppedBytes: wo.dropped}
		for k, n := range wo.exits {
			wc.Exits = append(wc.Exits, ExitCount{Code: k.code, Signal: k.signal, N: n})
		}
		c.Watchers[name] = wc
	}
	return c
}

// restoreCounters makes the counters what c says (New of an adopting
// circled, before any watcher is observed). Per-process bookkeeping
// (bytes dropped so far by each pid) starts again: the new binary's
// processes count their drops from zero.
func (o *obs) restoreCounters(c *CountersState) {
	if c == nil {
		return
	}
	o.mu.Lock()
	o.reloadOK, o.reloadKO = c.ReloadsOK, c.ReloadsFailed
	if !c.LastReloadOK.IsZero() {
		o.lastOK = c.LastReloadOK
	}
	o.mu.Unlock()
	for name, wc := range c.Watchers {
		wo := o.watcherObsFor(name)
		o.mu.Lock()
		for r, n := range wc.Restarts {
			wo.restarts[r] = n
		}
		for _, e := range wc.Exits {
			wo.exits[exitKey{code: e.Code, signal: e.Signal}] = e.N
		}
		wo.dropped = wc.DroppedBytes
		o.mu.Unlock()
	}
}
