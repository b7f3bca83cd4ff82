// Package procstate keeps circled's state file: which circled runs
// (its pid and start time), its cgroup subtree, and, where processes are
// not in cgroups, each child's pid, start time and process group. A
// circled that starts on the same control socket reads what a crashed
// predecessor (kill -9, the OOM killer, a panic) left and stops those
// processes before it starts anything (see supervisor's recovery).
//
// The file lives next to the control socket (SOCKET.state), in a
// directory only circled's user (or root) can write. One goroutine
// writes it: a snapshot written atomically (a temporary file, then
// rename), then one appended line per change ("proc ..." when a process
// starts, "end PID" when it ends), a single small write each, until the
// journal outgrows a snapshot and the next snapshot replaces it. A burst
// of changes costs one write. It is removed on a clean exit. Start times come from
// /proc/PID/stat (field 22) on Linux; elsewhere they cannot be read, no
// process is recorded, and only the cgroup (Linux) can help.
package procstate
