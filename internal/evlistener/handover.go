package evlistener

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"
)

// Live upgrade (issue 19; DESIGN.md "Live upgrade", "Event listeners"):
// the running circled freezes its bus (Bus.Freeze: no event is sent, no
// tick made, every writer parked between two writes), hands the state
// over (BusState, TrackerState: JSON, with the listeners' standard input
// descriptors), executes the new binary, whose bus starts from it
// (NewBusFrom, Pool.Restore, NewTrackerFrom). A listener sees nothing:
// its input stays open, an envelope cut by the freeze is finished by
// the new binary, its answer read so far is kept, and serials go on.

// BusState is a bus handed over by a live upgrade.
type BusState struct {
	// Serial is the last global serial given (-1: none yet).
	Serial int64 `json:"serial"`
	// Ticks are the last TICK_<period> boundaries published (Unix
	// seconds), by period.
	Ticks map[int]int64 `json:"ticks,omitempty"`
	Pools []PoolState   `json:"pools"`
}

// PoolState is one pool handed over.
type PoolState struct {
	Name    string `json:"name"`
	Serial  int64  `json:"serial"` // the last pool serial given
	Dropped uint64 `json:"dropped,omitempty"`
	// Buffer are the events waiting for a listener, oldest first.
	Buffer    []QueuedState   `json:"buffer,omitempty"`
	Listeners []ListenerState `json:"listeners,omitempty"`
}

// QueuedState is an event with its serials.
type QueuedState struct {
	Name       string `json:"name"`
	Payload    string `json:"payload,omitempty"`
	Serial     int64  `json:"serial"`
	PoolSerial int64  `json:"pool_serial"`
}

// ListenerState is one listener's protocol state.
type ListenerState struct {
	WID int `json:"wid"`
	PID int `json:"pid"`
	// State is Acknowledged, Ready, Busy or Unknown.
	State string `json:"state"`
	// FD is the write end of its standard input (inherited by the new
	// binary: the same number).
	FD int `json:"fd"`
	// Inflight is the event it was sent (Busy): its RESULT is awaited.
	Inflight *QueuedState `json:"inflight,omitempty"`
	// Unwritten is what of the envelopes sent to it was not written to
	// its input yet (a write cut short by the freeze).
	Unwritten []byte `json:"unwritten,omitempty"`
	// Read is what it wrote that the protocol has not consumed yet (a
	// partial READY or RESULT line); ResultLen is the n of the RESULT n
	// line read (-1 before it) and Result the bytes of that result read.
	Read      []byte `json:"read,omitempty"`
	ResultLen int    `json:"result_len"`
	Result    []byte `json:"result,omitempty"`
}

// TrackerState is a Tracker handed over.
type TrackerState struct {
	Procs []TrackedState `json:"procs,omitempty"`
}

// TrackedState is one process's supervisor state.
type TrackedState struct {
	Group   string `json:"group"`
	Process string `json:"process"`
	State   string `json:"state"`
	Tries   int    `json:"tries,omitempty"`
	PID     int    `json:"pid,omitempty"`
}

func (q *queued) state() QueuedState {
	return QueuedState{Name: q.ev.Name, Payload: q.ev.Payload, Serial: q.serial, PoolSerial: q.poolSerial}
}

func (q QueuedState) queued() *queued {
	return &queued{ev: Event{Name: q.Name, Payload: q.Payload}, serial: q.Serial, poolSerial: q.PoolSerial}
}

// Freeze holds the bus still for a live upgrade and returns its state
// and the descriptors it names (the listeners' standard inputs, in
// State order): the tick timer stops, no pool sends an event, and every
// listener's writer is parked between two writes (a write under way is
// cut short by an expired write deadline; the rest is in Unwritten).
// Events published meanwhile are buffered (they are in the state only
// if published before Freeze returned: the caller keeps publishers
// still). It fails, thawing, when a writer does not park by timeout.
// Thaw undoes it.
func (b *Bus) Freeze(timeout time.Duration) (*BusState, []*os.File, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, nil, errors.New("event listener bus is closed")
	}
	if b.frozen {
		b.mu.Unlock()
		return nil, nil, errors.New("event listener bus is already frozen")
	}
	b.frozen = true
	b.retickLocked() // stops the tick loop
	pools := slices.Clone(b.pools)
	b.frozenPools = pools
	b.mu.Unlock()
	b.tickDone.Wait()

	deadline := time.Now().Add(timeout)
	for _, p := range pools {
		if err := p.freeze(deadline); err != nil {
			b.Thaw()
			return nil, nil, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := &BusState{Serial: b.serial, Pools: []PoolState{}}
	if len(b.tickLast) > 0 {
		st.Ticks = map[int]int64{}
		for k, v := range b.tickLast {
			st.Ticks[k] = v
		}
	}
	var files []*os.File
	for _, p := range pools {
		ps, fs := p.export()
		st.Pools = append(st.Pools, ps)
		files = append(files, fs...)
	}
	return st, files, nil
}

// Thaw undoes Freeze (the upgrade did not happen): writers finish what
// they were writing, pools send their buffered events, ticks resume (a
// boundary crossed meanwhile is published at once).
func (b *Bus) Thaw() {
	b.mu.Lock()
	if !b.frozen {
		b.mu.Unlock()
		return
	}
	pools := b.frozenPools
	b.frozenPools = nil
	b.frozen = false
	b.mu.Unlock()
	for _, p := range pools {
		p.thaw()
	}
	b.mu.Lock()
	b.tickPeriods = nil // retick starts the loop again
	b.retickLocked()
	b.mu.Unlock()
}

// freeze stops p's sends and waits until every writer is parked.
func (p *Pool) freeze(deadline time.Time) error {
	p.mu.Lock()
	p.frozen = true
	ws := make([]*os.File, 0, len(p.ls))
	for _, l := range p.ls {
		ws = append(ws, l.w)
	}
	p.mu.Unlock()
	for _, w := range ws {
		// Wakes a write waiting for room in the pipe; an error (not in
		// the poller) leaves the wait below to time out.
		w.SetWriteDeadline(time.Unix(1, 0))
	}
	t := time.AfterFunc(time.Until(deadline), func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer t.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		var busy *listener
		for _, l := range p.ls {
			if !l.dead && !l.parked {
				busy = l
			}
		}
		if busy == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("eventlistener:%s: the writer to listener %d (pid %d) did not stop", p.name, busy.wid, busy.pid)
		}
		p.cond.Wait()
	}
}

func (p *Pool) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.ls {
		l.w.SetWriteDeadline(time.Time{})
	}
	p.frozen = false
	p.cond.Broadcast()
	p.dispatchLocked()
}

// export is p's state (frozen) and its listeners' input descriptors.
func (p *Pool) export() (PoolState, []*os.File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := PoolState{Name: p.name, Serial: p.serial, Dropped: p.dropped}
	for _, q := range p.buf {
		ps.Buffer = append(ps.Buffer, q.state())
	}
	wids := make([]int, 0, len(p.ls))
	for wid, l := range p.ls {
		if !l.dead {
			wids = append(wids, wid)
		}
	}
	sort.Ints(wids)
	var files []*os.File
	for _, wid := range wids {
		l := p.ls[wid]
		fd := -1
		if rc, err := l.w.SyscallConn(); err == nil {
			rc.Control(func(u uintptr) { fd = int(u) }) // not Fd: it would make it blocking
		}
		ls := ListenerState{WID: l.wid, PID: l.pid, State: l.state, FD: fd,
			Unwritten: slices.Clone(l.unwritten), Read: slices.Clone(l.buf), ResultLen: l.resultLen, Result: slices.Clone(l.result)}
		if l.inflight != nil {
			q := l.inflight.state()
			ls.Inflight = &q
		}
		ps.Listeners = append(ps.Listeners, ls)
		files = append(files, l.w)
	}
	return ps, files
}

// NewBusFrom makes the bus a live upgrade handed over (NewBus's, with
// its serial and tick boundaries); its pools are made by AddPool and
// take their state with Restore.
func NewBusFrom(server string, st *BusState) *Bus {
	b := NewBus(server)
	if st != nil {
		b.serial = st.Serial
		if len(st.Ticks) > 0 {
			b.tickLast = map[int]int64{}
			for k, v := range st.Ticks {
				b.tickLast[k] = v
			}
		}
	}
	return b
}

// Restore gives a new pool (AddPool's, nothing sent yet) what a live
// upgrade handed over: its serial, buffered events and listeners, whose
// standard inputs are the inherited descriptors. Call it before the
// listeners' output is read (the adopted watcher's pumps open Stdout).
// A listener whose descriptor cannot be used is left out (its process
// is not fed: reported in the error).
func (p *Pool) Restore(ps PoolState) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("eventlistener:%s is closed", p.name)
	}
	p.serial, p.dropped = ps.Serial, ps.Dropped
	for _, q := range ps.Buffer {
		p.buf = append(p.buf, q.queued())
	}
	var errs []error
	for _, s := range ps.Listeners {
		switch s.State {
		case Acknowledged, Ready, Busy, Unknown:
		default:
			errs = append(errs, fmt.Errorf("eventlistener:%s: listener %d: unknown state %q", p.name, s.WID, s.State))
			continue
		}
		if s.FD < 3 {
			errs = append(errs, fmt.Errorf("eventlistener:%s: listener %d: no input descriptor (%d)", p.name, s.WID, s.FD))
			continue
		}
		w := os.NewFile(uintptr(s.FD), fmt.Sprintf("%s.%d stdin", p.name, s.WID))
		if w == nil {
			errs = append(errs, fmt.Errorf("eventlistener:%s: listener %d: bad descriptor %d", p.name, s.WID, s.FD))
			continue
		}
		l := &listener{wid: s.WID, pid: s.PID, state: s.State, w: w, written: make(chan struct{}),
			unwritten: s.Unwritten, buf: s.Read, resultLen: s.ResultLen, result: s.Result}
		if s.Inflight != nil {
			l.inflight = s.Inflight.queued()
		}
		if l.state != Busy {
			l.resultLen, l.result = -1, nil
		}
		if old := p.ls[s.WID]; old != nil {
			p.endLocked(old, "replaced by a handed-over listener")
		}
		p.ls[s.WID] = l
		go p.writeLoop(l)
	}
	p.dispatchLocked()
	return errors.Join(errs...)
}

// Export is the tracker's state (a live upgrade hands it over).
func (t *Tracker) Export() TrackerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	var st TrackerState
	for k, p := range t.procs {
		st.Procs = append(st.Procs, TrackedState{Group: k.group, Process: k.process, State: p.state, Tries: p.tries, PID: p.pid})
	}
	sort.Slice(st.Procs, func(i, j int) bool {
		a, b := st.Procs[i], st.Procs[j]
		return a.Group < b.Group || a.Group == b.Group && a.Process < b.Process
	})
	return st
}

// NewTrackerFrom makes the tracker a live upgrade handed over.
func NewTrackerFrom(st TrackerState) *Tracker {
	t := NewTracker()
	for _, p := range st.Procs {
		t.procs[procKey{p.Group, p.Process}] = &tracked{state: p.State, tries: p.Tries, pid: p.PID}
	}
	return t
}
