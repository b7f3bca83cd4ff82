//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd

package main

import (
	"fmt"
	"log/slog"

	"golang.org/x/sys/unix"
)

// raiseLimits does what supervisord does with minfds and minprocs at
// startup: a soft limit below the minimum is raised to it, and the hard
// limit too when it is below (which only root may do); when that fails,
// circled refuses to start. 0 = leave that limit alone.
//
// Go itself raises circled's RLIMIT_NOFILE soft limit to the hard limit
// at startup and gives children back the soft limit circled was started
// with; once minfds needs a setrlimit here, children get the new limit.
func raiseLimits(minFDs, minProcs int, log *slog.Logger) error {
	if err := raiseLimit(unix.RLIMIT_NOFILE, "minfds", "RLIMIT_NOFILE, open files", minFDs, log); err != nil {
		return err
	}
	return raiseLimit(unix.RLIMIT_NPROC, "minprocs", "RLIMIT_NPROC, processes", minProcs, log)
}

func raiseLimit(resource int, key, what string, min int, log *slog.Logger) error {
	if min <= 0 {
		return nil
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(resource, &lim); err != nil {
		return fmt.Errorf("%s = %d: reading the limit (%s): %w", key, min, what, err)
	}
	// Rlimit's fields are int64 on some systems, uint64 on others; an
	// unlimited value (RLIM_INFINITY) is huge either way, or negative
	// (all ones) as an int64.
	soft, hard := limitValue(lim.Cur), limitValue(lim.Max)
	want := uint64(min)
	if soft >= want {
		return nil
	}
	newLim := lim
	setLimit(&newLim.Cur, want)
	if hard < want {
		setLimit(&newLim.Max, want)
	}
	if err := unix.Setrlimit(resource, &newLim); err != nil {
		if hard < want {
			return fmt.Errorf("%s = %d: the hard limit (%s) is %d and circled cannot raise it (%v): raise it in circled's environment (ulimit, LimitNOFILE=/LimitNPROC= in a systemd unit, /etc/security/limits.conf) or lower %s",
				key, min, what, hard, err, key)
		}
		return fmt.Errorf("%s = %d: raising the soft limit (%s) from %d: %w", key, min, what, soft, err)
	}
	log.Info("raised a resource limit", "key", key, "limit", what, "soft", min, "was", soft)
	return nil
}

// limitValue is an rlimit field as a uint64 (negative = unlimited).
func limitValue[T int64 | uint64](v T) uint64 {
	if v < 0 {
		return ^uint64(0)
	}
	return uint64(v)
}

func setLimit[T int64 | uint64](p *T, v uint64) { *p = T(v) }
