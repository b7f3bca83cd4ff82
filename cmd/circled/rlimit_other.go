//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package main

import "log/slog"

// raiseLimits: supervisord's minfds and minprocs are POSIX resource
// limits (RLIMIT_NOFILE, RLIMIT_NPROC); this system has no RLIMIT_NPROC
// (Windows, Solaris, illumos, ...), so circled leaves its limits as they
// are and says so.
func raiseLimits(minFDs, minProcs int, log *slog.Logger) error {
	if minFDs > 0 || minProcs > 0 {
		log.Debug("minfds and minprocs are not applied on this system", "minfds", minFDs, "minprocs", minProcs)
	}
	return nil
}
