// Package cgroup runs each of circled's processes in a cgroup v2 of its
// own, so that everything a process starts, at any depth, stays
// countable, signalable and killable, whatever it does with process
// groups and sessions (setsid, double forks).
//
// Layout, under the cgroup circled was started in (OWN, from the "0::"
// line of /proc/self/cgroup, inside the cgroup2 mount found in
// /proc/self/mountinfo):
//
//	OWN/NAME/            circled's subtree (NAME: "circled-" + a hash of
//	                     the control socket, or of circled's pid)
//	OWN/NAME/circled     circled itself, when it moved there (v2's rule:
//	                     a cgroup with children holds no processes)
//	OWN/NAME/W/N         one cgroup per process of watcher W
//
// The kernel's own files do the work: cgroup.procs (members),
// cgroup.kill (SIGKILL to the whole subtree, Linux 5.14) and
// cgroup.events ("populated 0" once the subtree is empty; inotify
// reports its changes, so emptiness is an event, not a poll). No
// controller is needed: the unified hierarchy of a hybrid v1/v2 host
// works as well as a pure v2 one.
//
// This is a small direct implementation over golang.org/x/sys/unix:
// containerd/cgroups and opencontainers/cgroups manage controllers and
// systemd scopes, which circled does not use, and neither watches
// cgroup.events with inotify.
package cgroup
