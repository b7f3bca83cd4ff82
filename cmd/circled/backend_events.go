package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/supervisor"
)

var _ ctl.EventsBackend = backend{}

// Events implements ctl.EventsBackend over the supervisor's event bus.
func (b backend) Events(ctx context.Context, req ctl.EventsRequest, w io.Writer) error {
	sub := b.sup.Subscribe(req.Watchers, req.Since)
	defer sub.Close()
	if _, err := w.Write(nil); err != nil { // the headers, before the first event
		return nil
	}
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			if errors.Is(err, supervisor.ErrEventsClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		line, err := json.Marshal(toEvent(ev))
		if err != nil {
			return err
		}
		if _, err := w.Write(append(line, '\n')); err != nil {
			return nil // the client went away
		}
	}
}

func toEvent(ev supervisor.Event) ctl.Event {
	out := ctl.Event{Time: ev.Time, Type: ev.Type, Watcher: ev.Watcher, WID: ev.WID, PID: ev.PID,
		Code: ev.Code, Signal: ev.Signal, State: ev.State, Reason: ev.Reason, Count: ev.Count}
	if ev.Summary != nil {
		s := toSummary(*ev.Summary)
		out.Summary = &s
	}
	return out
}
