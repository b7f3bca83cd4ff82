package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/buildinfo"
	"github.com/circle-supervisor/circle/supervisor"
	"github.com/circle-supervisor/circle/watcher"
)

// backend adapts the supervisor to ctl.Backend (ctl never imports the
// supervisor).
type backend struct {
	sup     *supervisor.Supervisor
	stopped <-chan struct{} // closed when every watcher has stopped at shutdown
	up      *upgrader       // live upgrades (upgrade*.go); nil: none
}

var _ ctl.Backend = backend{}

// mapErr turns supervisor errors into ctl's sentinels.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, supervisor.ErrNoSuchWatcher):
		return fmt.Errorf("%w: %s", ctl.ErrNoSuchWatcher, trimPrefix(err, supervisor.ErrNoSuchWatcher))
	case errors.Is(err, supervisor.ErrBadConfig):
		return fmt.Errorf("%w: %s", ctl.ErrBadConfig, trimPrefix(err, supervisor.ErrBadConfig))
	case errors.Is(err, supervisor.ErrShuttingDown):
		// A command that passed busy() just before shutdown began: 503.
		return ctl.ErrShuttingDown
	}
	return err
}

// badRequest is err, answered as a 400 (ctl.ErrBadRequest) with err's
// message as it is.
type badRequest struct{ err error }

func (e badRequest) Error() string        { return e.err.Error() }
func (e badRequest) Unwrap() error        { return e.err }
func (e badRequest) Is(target error) bool { return target == ctl.ErrBadRequest }

func trimPrefix(err, sentinel error) string {
	s, p := err.Error(), sentinel.Error()+": "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

func (b backend) busy() error {
	if b.sup.Stopping() {
		return ctl.ErrShuttingDown
	}
	return nil
}

func toExit(e watcher.ExitStatus, has bool) ctl.Exit {
	if !has {
		return ctl.Exit{None: true} // nothing has ended yet: not "exit 0"
	}
	if e.Signal != "" {
		return ctl.Exit{Signal: e.Signal, OOM: e.OOM} // code is for normal exits only
	}
	return ctl.Exit{Code: e.Code}
}

func (b backend) Status(ctx context.Context, names []string) (ctl.Status, error) {
	ws, lastErr, err := b.sup.Status(names)
	if err != nil {
		return ctl.Status{}, mapErr(err)
	}
	// Counting reads a file per process (about 30 ms at 2000): only
	// for a status that asks (circlectl status --json).
	counted := ctl.StatusOptionsFrom(ctx).Descendants
	if counted {
		b.sup.CountDescendants(ws)
	}
	st := ctl.Status{Watchers: make([]ctl.WatcherStatus, 0, len(ws)), LastReloadError: lastErr, Sockets: b.sockets(), Version: buildinfo.Version}
	for _, w := range ws {
		cw := ctl.WatcherStatus{Name: w.Name, State: w.State, NumProcesses: w.NumProcesses, Priority: w.Priority, Autostart: w.Autostart, Error: w.Error,
			Processes: make([]ctl.ProcessStatus, 0, len(w.Processes))}
		for _, p := range w.Processes {
			d := ctl.NotCounted
			if counted {
				d = p.Descendants
			}
			cw.Processes = append(cw.Processes, ctl.ProcessStatus{WID: p.WID, PID: p.PID, State: p.State, StartedAt: p.StartedAt,
				Restarts: p.Restarts, LastExit: toExit(p.LastExit, p.HasExit), Error: p.Error, DroppedBytes: p.DroppedBytes,
				PlannedRestarts: p.PlannedRestarts, Descendants: d,
				Ready: p.Ready, Health: p.Health, StatusText: p.StatusText})
		}
		st.Watchers = append(st.Watchers, cw)
	}
	return st, nil
}

func (b backend) List(ctx context.Context) ([]string, error) {
	return b.sup.Match(nil)
}

type op func(context.Context, []string, bool) ([]string, error)

func (b backend) do(ctx context.Context, f op, names []string, wait bool) (ctl.Result, error) {
	if err := b.busy(); err != nil {
		return ctl.Result{}, err
	}
	ns, err := f(ctx, names, wait)
	return ctl.Result{Watchers: ns}, mapErr(err)
}

func (b backend) Start(ctx context.Context, names []string, wait bool) (ctl.Result, error) {
	return b.do(ctx, b.sup.Start, names, wait)
}

func (b backend) Stop(ctx context.Context, names []string, wait bool) (ctl.Result, error) {
	return b.do(ctx, b.sup.Stop, names, wait)
}

func (b backend) Restart(ctx context.Context, names []string, wait bool) (ctl.Result, error) {
	return b.do(ctx, b.sup.Restart, names, wait)
}

func (b backend) Reload(ctx context.Context, names []string, wait bool) (ctl.Result, error) {
	return b.do(ctx, b.sup.Reload, names, wait)
}

func (b backend) ReloadConfig(ctx context.Context) (ctl.ReloadSummary, error) {
	if err := b.busy(); err != nil {
		return ctl.ReloadSummary{}, err
	}
	s, err := b.sup.ReloadConfig(ctx)
	if err != nil {
		return ctl.ReloadSummary{}, mapErr(err)
	}
	return toSummary(s), nil
}

func toSummary(s supervisor.ReloadSummary) ctl.ReloadSummary {
	nz := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	return ctl.ReloadSummary{Added: nz(s.Added), Removed: nz(s.Removed), Restarted: nz(s.Restarted), Scaled: nz(s.Scaled),
		Updated: nz(s.Updated), Unchanged: nz(s.Unchanged), NeedRestart: s.NeedRestart, Failed: s.Failed}
}

func (b backend) Signal(ctx context.Context, name, sig string, pid int, children bool) (ctl.Result, error) {
	if err := b.sup.Signal(name, sig, pid, children); err != nil {
		if errors.Is(err, supervisor.ErrNoSuchWatcher) {
			return ctl.Result{}, mapErr(err)
		}
		return ctl.Result{}, fmt.Errorf("%w: %w", ctl.ErrBadRequest, err)
	}
	return ctl.Result{Watchers: []string{name}}, nil
}

func (b backend) Incr(ctx context.Context, name string, n int) (ctl.Result, error) {
	if err := b.busy(); err != nil {
		return ctl.Result{}, err
	}
	c, err := b.sup.Incr(name, n)
	if errors.Is(err, watcher.ErrTooManyProcesses) {
		// Beyond the maximum (or a singleton's one): the request's
		// fault, 400, not a daemon failure.
		return ctl.Result{}, badRequest{err}
	}
	if err != nil {
		return ctl.Result{}, mapErr(err)
	}
	return ctl.Result{Watchers: []string{name}, NumProcesses: c}, nil
}

func (b backend) NumProcesses(ctx context.Context, name string) (ctl.Result, error) {
	c, err := b.sup.NumProcesses(name)
	if err != nil {
		return ctl.Result{}, mapErr(err)
	}
	return ctl.Result{Watchers: []string{name}, NumProcesses: c}, nil
}

func (b backend) Stats(ctx context.Context, names []string) (ctl.Stats, error) {
	ws, err := b.sup.Stats(names)
	if err != nil {
		return ctl.Stats{}, mapErr(err)
	}
	out := ctl.Stats{Watchers: make([]ctl.WatcherStats, 0, len(ws))}
	for _, w := range ws {
		cw := ctl.WatcherStats{Name: w.Name, Processes: make([]ctl.ProcessStats, 0, len(w.Processes))}
		for _, p := range w.Processes {
			// The same fields: a conversion, which stops compiling if
			// either type changes alone.
			cw.Processes = append(cw.Processes, ctl.ProcessStats(p))
		}
		out.Watchers = append(out.Watchers, cw)
	}
	return out, nil
}

func (b backend) Quit(ctx context.Context, wait bool) error {
	b.sup.Quit()
	if !wait {
		return nil
	}
	select {
	case <-b.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b backend) Version(ctx context.Context) (ctl.Version, error) {
	n, lastErr := b.up.status()
	return ctl.Version{Version: buildinfo.Version, Commit: buildinfo.Commit, GoVersion: buildinfo.GoVersion(), PID: os.Getpid(),
		Upgrades: n, UpgradeError: lastErr}, nil
}

// Upgrade implements ctl.UpgradeBackend: a live upgrade (upgrade*.go).
func (b backend) Upgrade(ctx context.Context, req ctl.UpgradeRequest) (ctl.UpgradeReply, func(), error) {
	if b.up == nil {
		return ctl.UpgradeReply{}, nil, upgradeRefused{"live upgrade is not available in this daemon"}
	}
	return b.up.Upgrade(ctx, req)
}

func (b backend) Sockets(ctx context.Context) ([]ctl.Socket, error) {
	return b.sockets(), nil
}

// sockets are the sockets the supervisor holds, in ctl's terms.
func (b backend) sockets() []ctl.Socket {
	held := b.sup.Sockets()
	out := make([]ctl.Socket, 0, len(held))
	for _, s := range held {
		cs := ctl.Socket{Name: s.Name, Address: s.Address, Family: s.Family, Type: s.Type, FD: s.FD,
			Watchers: make([]ctl.SocketUse, 0, len(s.Watchers))}
		for _, u := range s.Watchers {
			// The same fields: a conversion, which stops compiling if
			// either type changes alone.
			cs.Watchers = append(cs.Watchers, ctl.SocketUse(u))
		}
		out = append(out, cs)
	}
	return out
}

func (b backend) Logs(ctx context.Context, name string, req ctl.LogsRequest, w io.Writer) error {
	err := b.sup.Logs(ctx, name, req.Lines, req.Follow, req.Stream, w)
	if err != nil && !errors.Is(err, supervisor.ErrNoSuchWatcher) {
		return fmt.Errorf("%w: %w", ctl.ErrBadRequest, err)
	}
	return mapErr(err)
}

func (b backend) Reopen(ctx context.Context) error {
	return b.sup.Reopen()
}
