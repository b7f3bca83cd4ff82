// Package supervisor is the arbiter: it owns the set of watchers and
// decides what happens to each of them and when circled exits.
//
// It owns:
//   - applying a config: start in dependency then priority order, stop in
//     reverse, diff on reload (reload.go), the config-directory watch
//     (configwatch.go) and dependencies (depends.go);
//   - the order of commands: every mutation from outside (ctl and rpc2
//     commands, SIGHUP, a config apply, a dependency start, shutdown) goes
//     through the watcher's lane (supervisor.go, "Commands on one
//     watcher"), so the last command on a watcher decides its state;
//   - shutdown: it refuses new commands, cancels those in flight and a
//     reload in progress, stops every watcher and waits for every
//     goroutine a command started (Run);
//   - the reaper, the only wait4 in circled (reaper_unix.go), and
//     containment (cgroups, contain.go) and crash recovery (recover_unix.go);
//   - where output goes (sinks.go, through package logs), events and
//     metrics (events.go, metrics.go) and process statistics (stats*.go).
//
// Per-watcher work (spawning, restarts, readiness, stopping a process)
// is package watcher's.
package supervisor
