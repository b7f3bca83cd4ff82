package supervisor

import (
	"context"
	"path"
	"sync"
	"time"
)

// Event types (docs/API.md, GET /v1/events).
const (
	EventSpawn      = "spawn"       // a process started (pid, wid)
	EventExit       = "exit"        // a process ended (code or signal)
	EventReady      = "ready"       // a process is up (running)
	EventUnhealthy  = "unhealthy"   // a liveness check failed (reason)
	EventState      = "state"       // a watcher changed state (state)
	EventFlapping   = "flapping"    // a watcher started a flapping pause
	EventFatal      = "fatal"       // a watcher gave up
	EventRestart    = "restart"     // a slot's process was replaced (reason)
	EventReload     = "reload"      // a config reload (summary, or reason = the error)
	EventLogDropped = "log_dropped" // output a process could not write (bytes)
	EventLost       = "lost"        // this subscriber missed count events
	EventVeto       = "veto"        // a before_* hook failed, so the action did not happen (reason)
	EventUpgrade    = "upgrade"     // circled executed a new binary in place (reason: "FROM -> TO")
)

// Event is one thing that happened, as GET /v1/events sends it.
type Event struct {
	Time    time.Time
	Type    string
	Watcher string
	WID     int
	PID     int
	Code    *int   // exit code (exit events of processes not killed by a signal)
	Signal  string // "KILL", "TERM", ... (exit events)
	State   string // the watcher's new state (state, flapping, fatal)
	Reason  string // restart reason, error text, ...
	Count   int64  // lost: events missed; log_dropped: bytes
	Summary *ReloadSummary
}

const (
	eventRing   = 1000 // events kept for ?since
	eventBuffer = 256  // events a subscriber may fall behind by
)

// eventBus fans events out to subscribers and keeps the last eventRing.
// Publish never blocks: a subscriber whose buffer is full loses events,
// and is told how many by a lost event once it reads again.
type eventBus struct {
	mu     sync.Mutex
	ring   []Event // circular, eventRing at most
	next   int     // where the next event goes once the ring is full
	subs   map[*EventSub]struct{}
	closed bool
}

// EventSub is one subscriber of the event bus.
type EventSub struct {
	bus    *eventBus
	ch     chan Event
	replay []Event
	globs  []string
	lost   int64 // guarded by bus.mu
	done   chan struct{}
}

func newEventBus() *eventBus {
	return &eventBus{subs: map[*EventSub]struct{}{}}
}

func matchAny(globs []string, name string) bool {
	if len(globs) == 0 || name == "" {
		return true // unfiltered, or not about one watcher (reload, lost)
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok || g == name {
			return true
		}
	}
	return false
}

func (b *eventBus) publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ring) < eventRing {
		b.ring = append(b.ring, ev)
	} else {
		b.ring[b.next] = ev
		b.next = (b.next + 1) % eventRing
	}
	for s := range b.subs {
		if !matchAny(s.globs, ev.Watcher) {
			continue
		}
		if s.lost > 0 {
			// The lost notice goes first, once there is room for it.
			select {
			case s.ch <- Event{Time: ev.Time, Type: EventLost, Count: s.lost}:
				s.lost = 0
			default:
				s.lost++
				continue
			}
		}
		select {
		case s.ch <- ev:
		default:
			s.lost++
		}
	}
}

// subscribe starts a subscription for the watchers matching globs (all
// when none). With since set, the kept events from since on come first.
func (b *eventBus) subscribe(globs []string, since time.Time) *EventSub {
	s := &EventSub{bus: b, ch: make(chan Event, eventBuffer), globs: globs, done: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !since.IsZero() {
		n := len(b.ring)
		for i := range n {
			ev := b.ring[(b.next+i)%n]
			if !ev.Time.Before(since) && matchAny(globs, ev.Watcher) {
				s.replay = append(s.replay, ev)
			}
		}
	}
	if b.closed {
		close(s.done)
	} else {
		b.subs[s] = struct{}{}
	}
	return s
}

// history returns the kept events, oldest first (a live upgrade hands
// them over).
func (b *eventBus) history() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.ring)
	out := make([]Event, 0, n)
	for i := range n {
		out = append(out, b.ring[(b.next+i)%n])
	}
	return out
}

// restore keeps evs (history's) as the events before any published
// here. Call it before anyone subscribes.
func (b *eventBus) restore(evs []Event) {
	if len(evs) > eventRing {
		evs = evs[len(evs)-eventRing:]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ring = append(b.ring[:0], evs...)
	b.next = 0
}

// close ends every subscription (shutdown).
func (b *eventBus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for s := range b.subs {
		close(s.done)
		delete(b.subs, s)
	}
}

// Next returns the next event: the replayed ones first, then live ones.
// When events were lost it returns a lost event (Count = how many) where
// they would have been. It returns ctx's error when ctx ends, and
// ErrEventsClosed once circled shuts down and everything before has been
// read.
func (s *EventSub) Next(ctx context.Context) (Event, error) {
	if len(s.replay) > 0 {
		ev := s.replay[0]
		s.replay = s.replay[1:]
		return ev, nil
	}
	select {
	case ev := <-s.ch:
		return ev, nil
	default:
	}
	b := s.bus
	b.mu.Lock()
	if len(s.ch) == 0 && s.lost > 0 {
		n := s.lost
		s.lost = 0
		b.mu.Unlock()
		return Event{Time: time.Now(), Type: EventLost, Count: n}, nil
	}
	b.mu.Unlock()
	select {
	case ev := <-s.ch:
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	case <-s.done:
		select {
		case ev := <-s.ch:
			return ev, nil
		default:
		}
		return Event{}, ErrEventsClosed
	}
}

// Close ends the subscription.
func (s *EventSub) Close() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.done)
	}
}

// ErrEventsClosed ends an event subscription when circled shuts down.
var ErrEventsClosed = errorString("circled is shutting down")

type errorString string

func (e errorString) Error() string { return string(e) }

// Subscribe follows circled's events for the watchers matching globs
// (every watcher when none; events about no single watcher, such as
// reload, always). With since set, the last kept events (up to 1000)
// from that time on come first. Call Close when done.
func (s *Supervisor) Subscribe(globs []string, since time.Time) *EventSub {
	return s.obs.bus.subscribe(globs, since)
}

// Publish sends an event to the subscribers (and the kept history).
func (s *Supervisor) Publish(ev Event) { s.obs.bus.publish(ev) }
