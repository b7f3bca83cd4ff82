//go:build unix

package watcher

import "golang.org/x/sys/unix"

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
