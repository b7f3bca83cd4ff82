//go:build unix

package watcher

import (
	"github.com/circle-supervisor/circle/internal/cgroup"
	"golang.org/x/sys/unix"
)

// pgroupGone reports whether no process is left in the process group
// led by pid (a zombie still counts until it is reaped). It is one
// kill(2): cheap enough for every exit.
func pgroupGone(pid int) bool {
	return unix.Kill(-pid, 0) == unix.ESRCH
}

// signalPgroup sends sig to the process group pid, ignoring errors (the
// group may be gone already).
func signalPgroup(pid int, sig string) error {
	s, err := parseSignal(sig)
	if err != nil {
		return err
	}
	if err := unix.Kill(-pid, s); err != nil && err != unix.ESRCH {
		return err
	}
	return nil
}

// signalCell sends sig to every process of c outside process group
// pgid (signalled on its own).
func signalCell(c *cgroup.Proc, sig string, pgid int) {
	if s, err := parseSignal(sig); err == nil {
		c.Signal(s, pgid)
	}
}
