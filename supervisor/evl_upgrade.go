package supervisor

import (
	"cmp"
	"context"
	"errors"
	"os"
	"slices"
	"time"

	"github.com/circle-supervisor/circle/internal/evlistener"
)

// Event listeners across a live upgrade (DESIGN.md "Live upgrade"):
// PrepareUpgrade, once every watcher is frozen and its pumps stopped
// (so no listener output is being parsed), freezes the listeners
// (freezeEvListeners): the event goroutine translates what is queued
// and pauses, then the bus stops sending (evlistener.Bus.Freeze). Its
// state goes into UpgradeState.EvListeners (format 2); the new binary
// makes its bus, tracker and pools from it (initEvListeners,
// specListener) before the adopted watchers' pumps read the listeners'
// output.

// evlFreezeWait bounds how long a listener's writer may take to stop
// (a write waiting for room in the pipe is cut by a deadline at once).
const evlFreezeWait = 5 * time.Second

// freezeEvListeners holds the listeners still and returns their state
// and the descriptors it names; nil state when there is no listener.
// thawEvListeners undoes it.
func (s *Supervisor) freezeEvListeners() (*EvListenersState, []*os.File, error) {
	v := &s.evl
	v.mu.Lock()
	bus, tr, x, done := v.bus, v.tr, v.x, v.done
	v.mu.Unlock()
	if bus == nil {
		return nil, nil, nil
	}
	if !x.pause(done) {
		return nil, nil, errors.New("event listeners are shutting down")
	}
	bst, files, err := bus.Freeze(evlFreezeWait)
	if err != nil {
		x.unpause()
		return nil, nil, err
	}
	if len(bst.Pools) == 0 {
		// A bus left by a reload that removed every listener: nothing
		// a listener would miss (a later one starts a new bus).
		return nil, nil, nil
	}
	st := &EvListenersState{Bus: *bst, Tracker: tr.Export()}
	for k, at := range x.spawned {
		st.Spawned = append(st.Spawned, EvSpawned{Watcher: k.watcher, WID: k.wid, PID: k.pid, At: at})
	}
	slices.SortFunc(st.Spawned, func(a, b EvSpawned) int {
		return cmp.Or(cmp.Compare(a.Watcher, b.Watcher), cmp.Compare(a.WID, b.WID), cmp.Compare(a.PID, b.PID))
	})
	return st, files, nil
}

// thawEvListeners undoes freezeEvListeners (an aborted upgrade).
func (s *Supervisor) thawEvListeners() {
	v := &s.evl
	v.mu.Lock()
	bus, x := v.bus, v.x
	v.mu.Unlock()
	if bus == nil {
		return
	}
	bus.Thaw()
	x.unpause()
}

// pause makes evLoop translate what is queued and wait; false when it
// ended (shutdown).
func (x *evTranslator) pause(done <-chan struct{}) bool {
	x.pmu.Lock()
	if x.paused != nil {
		x.pmu.Unlock()
		return true
	}
	x.paused, x.resume = make(chan struct{}), make(chan struct{})
	paused, cancel := x.paused, x.pcancel
	x.pmu.Unlock()
	cancel()
	select {
	case <-paused:
		return true
	case <-done:
		return false
	}
}

// unpause lets evLoop go on.
func (x *evTranslator) unpause() {
	x.pmu.Lock()
	defer x.pmu.Unlock()
	if x.paused == nil {
		return
	}
	x.pctx, x.pcancel = context.WithCancel(context.Background())
	close(x.resume)
	x.paused, x.resume = nil, nil
}

// restoreFrom keeps what a live upgrade handed over for the bus and
// pools made next (New: initEvListeners, then each listener's spec).
func (v *evListeners) restoreFrom(st *EvListenersState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.restore = st
	v.skipRunning = true
	v.restorePools = map[string]evlistener.PoolState{}
	for _, ps := range st.Bus.Pools {
		v.restorePools[ps.Name] = ps
	}
}
