package ctltest

import (
	"context"
	"encoding/json"
	"io"
	"path"

	"github.com/circle-supervisor/circle/ctl"
)

var _ ctl.EventsBackend = (*Fake)(nil)

// fakeEvents are the events Emit added and the Events calls following.
type fakeEvents struct {
	past []ctl.Event
	subs map[chan ctl.Event]struct{}
}

// Emit adds an event: it is kept (for since) and sent to every Events
// call following whose filter it matches. A follower that is not
// reading loses it (and is sent a lost event later), as circled does.
func (f *Fake) Emit(ev ctl.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events.past = append(f.events.past, ev)
	for ch := range f.events.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Subscribers is how many Events calls are following now.
func (f *Fake) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events.subs)
}

func fakeMatch(globs []string, name string) bool {
	if len(globs) == 0 || name == "" {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// Events records "Events [GLOBS] SINCE", writes the emitted events from
// since on (with since set) and then follows new ones until ctx ends.
func (f *Fake) Events(ctx context.Context, req ctl.EventsRequest, w io.Writer) error {
	ch := make(chan ctl.Event, 64)
	f.mu.Lock()
	since := ""
	if !req.Since.IsZero() {
		since = req.Since.UTC().Format("2006-01-02T15:04:05Z")
	}
	f.calls = append(f.calls, "Events "+formatNames(req.Watchers)+" "+since)
	var replay []ctl.Event
	if !req.Since.IsZero() {
		for _, ev := range f.events.past {
			if !ev.Time.Before(req.Since) {
				replay = append(replay, ev)
			}
		}
	}
	if f.events.subs == nil {
		f.events.subs = map[chan ctl.Event]struct{}{}
	}
	f.events.subs[ch] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.events.subs, ch)
		f.mu.Unlock()
	}()
	send := func(ev ctl.Event) error {
		if !fakeMatch(req.Watchers, ev.Watcher) {
			return nil
		}
		b, _ := json.Marshal(ev)
		_, err := w.Write(append(b, '\n'))
		return err
	}
	if _, err := w.Write(nil); err != nil {
		return nil
	}
	for _, ev := range replay {
		if send(ev) != nil {
			return nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-ch:
			if send(ev) != nil {
				return nil
			}
		}
	}
}

func formatNames(names []string) string {
	b, _ := json.Marshal(names)
	return string(b)
}
