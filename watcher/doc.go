// Package watcher runs one watcher: its N processes, their spawn, the
// restart policy (backoff, flapping, fatal), graceful stop of each
// process group, readiness and health checks, scaling, graceful
// replacement (reload, max age) and hooks. It knows nothing of config
// files or sockets: the supervisor hands it a Spec and a Spawner, and
// it imports no other circle package but internal ones.
//
// # One owner per watcher
//
// Each Watcher has one owner goroutine (owner.go), started by New and
// ended by Close. Every change to a watcher's state runs on it, one
// message at a time: commands (Start, Stop, Reload, Incr, Update,
// Signal, ...), process exits (the Spawner's callback only posts them),
// timer firings (backoff, grace period, flapping pause, MinUptime, max
// age), readiness, health and notify reports, hook results, and the
// results of spawns. A message never blocks: posting is an append to an
// unbounded queue, fork and exec run on spawn workers (spawn.go) whose
// results come back as messages, hooks and the supervisor's onEvent run
// in goroutines of their own, and no callback runs under a lock. Methods
// whose names end in Locked run on the owner (the name is historical:
// no lock is held). Readers (Status, Reached, PIDs, ...) are messages
// answered at once, so they answer within milliseconds while thousands
// of processes start.
//
// Waiting (Start, Stop, Reload with wait) registers a condition that the
// owner checks after every change; the waiter returns when it holds or
// when a later command supersedes it (a Stop overtaken by a Start
// returns an error saying so). Nothing here polls and nothing ticks: an
// idle watcher is an owner blocked on a channel. The Spawner (on Unix,
// the supervisor's reaper) is the only caller of wait4.
package watcher
