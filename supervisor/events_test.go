package supervisor

import (
	"context"
	"testing"
	"time"
)

func nextEv(t *testing.T, s *EventSub) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

// A subscriber that stops reading never blocks Publish nor the other
// subscribers; when it reads again it gets what fitted its buffer, then
// one lost event with the count, then the events after.
func TestEventBusStuckSubscriberGetsLost(t *testing.T) {
	b := newEventBus()
	stuck := b.subscribe(nil, time.Time{})
	live := b.subscribe(nil, time.Time{})
	defer stuck.Close()
	defer live.Close()
	const n = eventBuffer + 100
	for i := range n {
		b.publish(Event{Type: EventExit, Watcher: "w", PID: i + 1}) // never blocks
		if ev := nextEv(t, live); ev.PID != i+1 || ev.Type != EventExit {
			t.Fatalf("live subscriber: event %d = %+v", i, ev)
		}
	}
	for i := range eventBuffer {
		if ev := nextEv(t, stuck); ev.PID != i+1 {
			t.Fatalf("stuck subscriber: event %d = %+v", i, ev)
		}
	}
	b.publish(Event{Type: EventSpawn, Watcher: "w", PID: 9999})
	if ev := nextEv(t, stuck); ev.Type != EventLost || ev.Count != 100 {
		t.Fatalf("after the buffer: %+v, want lost with count 100", ev)
	}
	if ev := nextEv(t, stuck); ev.Type != EventSpawn || ev.PID != 9999 {
		t.Fatalf("after lost: %+v, want the spawn published later", ev)
	}
}

// A subscriber that falls behind and then drains its buffer is told of
// its losses even when nothing new is published.
func TestEventBusLostWithoutNewEvents(t *testing.T) {
	b := newEventBus()
	s := b.subscribe(nil, time.Time{})
	defer s.Close()
	for i := range eventBuffer + 3 {
		b.publish(Event{Type: EventExit, Watcher: "w", PID: i + 1})
	}
	for range eventBuffer {
		nextEv(t, s)
	}
	if ev := nextEv(t, s); ev.Type != EventLost || ev.Count != 3 {
		t.Fatalf("got %+v, want lost 3", ev)
	}
}

func TestEventBusSinceAndFilter(t *testing.T) {
	b := newEventBus()
	t0 := time.Now()
	for i := range eventRing + 10 {
		w := "web"
		if i%2 == 1 {
			w = "db"
		}
		b.publish(Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Type: EventSpawn, Watcher: w, PID: i})
	}
	b.publish(Event{Time: t0.Add(time.Hour), Type: EventReload})
	// Every kept event: the first 10 fell out of the ring.
	all := b.subscribe(nil, t0)
	defer all.Close()
	if len(all.replay) != eventRing {
		t.Fatalf("replayed %d events, want %d", len(all.replay), eventRing)
	}
	if ev := nextEv(t, all); ev.PID != 11 {
		t.Fatalf("oldest kept event = %+v, want pid 11", ev)
	}
	// A glob and a time: web's events from +1000ms on, and the reload.
	s := b.subscribe([]string{"w*"}, t0.Add(1000*time.Millisecond))
	defer s.Close()
	var got []Event
	for len(s.replay) > 0 {
		got = append(got, nextEv(t, s))
	}
	want := []int{1000, 1002, 1004, 1006, 1008}
	if len(got) != len(want)+1 {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want)+1, got)
	}
	for i, pid := range want {
		if got[i].Watcher != "web" || got[i].PID != pid {
			t.Fatalf("event %d = %+v, want web pid %d", i, got[i], pid)
		}
	}
	if got[len(want)].Type != EventReload {
		t.Fatalf("last = %+v, want the reload (about no watcher: always sent)", got[len(want)])
	}
	// Live events follow the same filter.
	b.publish(Event{Type: EventExit, Watcher: "db"})
	b.publish(Event{Type: EventExit, Watcher: "web", PID: 42})
	if ev := nextEv(t, s); ev.Watcher != "web" || ev.PID != 42 {
		t.Fatalf("live = %+v, want web's exit", ev)
	}
}

func TestEventBusCloseEndsSubscribers(t *testing.T) {
	b := newEventBus()
	s := b.subscribe(nil, time.Time{})
	b.publish(Event{Type: EventSpawn, Watcher: "w"})
	b.close()
	if ev := nextEv(t, s); ev.Type != EventSpawn {
		t.Fatalf("got %+v, want the event published before close", ev)
	}
	if _, err := s.Next(context.Background()); err != ErrEventsClosed {
		t.Fatalf("Next after close = %v, want ErrEventsClosed", err)
	}
}
