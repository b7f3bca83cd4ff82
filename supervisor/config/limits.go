package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Upper bounds of counts and durations, checked at load so that nothing
// later (allocation per process, timer arithmetic, log rotation cutoffs)
// can run out of memory or overflow. They are part of the documented file
// format; the control API uses MaxProcesses for incr/decr too.
const (
	// MaxProcesses bounds numprocesses (per watcher).
	MaxProcesses = 100000
	// MaxGracefulTimeout bounds graceful_timeout ([circled] and watchers).
	MaxGracefulTimeout = 24 * time.Hour
	// MaxWarmupDelay bounds warmup_delay ([circled] and watchers): it is
	// multiplied by the number of processes (or watchers) started at once.
	MaxWarmupDelay = time.Hour
	// MaxDuration bounds min_uptime, backoff_max, flapping.window and
	// flapping.retry_in.
	MaxDuration = 365 * 24 * time.Hour
	// MaxRetries bounds max_retry and flapping.max_retry (-1 = forever).
	MaxRetries = 1000000
	// MaxFlappingAttempts bounds flapping.attempts (the policy keeps that
	// many exit times per watcher).
	MaxFlappingAttempts = 10000
	// MaxPriority bounds priority: -MaxPriority..MaxPriority.
	MaxPriority = 1000000
	// MaxLogBytes bounds stdout_stream.max_bytes, stderr_stream.max_bytes
	// and [circled] logfile_max_bytes (1 TiB).
	MaxLogBytes int64 = 1 << 40
	// MaxBackups bounds backup_count and [circled] logfile_backups.
	MaxBackups = 10000
	// MaxAgeDays bounds stream max_age (days, 10 years).
	MaxAgeDays = 3650
	// MaxRotatePeriod bounds rotate_interval times the rotate_when unit
	// (S, M, H, D, W0-W6, midnight) of a timed stream (366 days).
	MaxRotatePeriod = 366 * 24 * time.Hour
	// MaxWIDOffset bounds wid_offset (supervisord's numprocs_start - 1)
	// and so numprocs_start.
	MaxWIDOffset = 1000000
	// MaxWIDWidth bounds wid_width (the zero padding of %(process_num)0Nd).
	MaxWIDWidth = 20
	// MaxMinFDs bounds [circled] minfds (Linux's default nr_open).
	MaxMinFDs = 1 << 20
	// MaxMinProcs bounds [circled] minprocs (Linux's largest pid_max).
	MaxMinProcs = 1 << 22
	// MinCheckInterval is the least ready.interval, ready.timeout,
	// health.interval, health.timeout and (when not 0) watchdog, so that
	// no check can busy-loop.
	MinCheckInterval = 10 * time.Millisecond
	// MaxReadyTimeout bounds ready.timeout.
	MaxReadyTimeout = 24 * time.Hour
	// MaxCheckInterval bounds ready.interval and health.timeout.
	MaxCheckInterval = time.Hour
	// MaxHealthInterval bounds health.interval.
	MaxHealthInterval = 24 * time.Hour
	// MaxWatchdog bounds watchdog.
	MaxWatchdog = 24 * time.Hour
	// MaxHealthRetries bounds health.retries.
	MaxHealthRetries = 1000
	// MinMemoryLimit and MaxMemoryLimit bound memory_max, memory_high and
	// max_memory (less than 1 MiB is a unit mistake: 512 is bytes).
	MinMemoryLimit int64 = 1 << 20
	MaxMemoryLimit int64 = 64 << 40
	// MaxCPUPercent bounds cpu_max (1024 CPUs).
	MaxCPUPercent float64 = 1024 * 100
	// MaxPids bounds pids_max (Linux's largest pid_max).
	MaxPids = 1 << 22
	// MaxIOWeight bounds io_weight (cgroup v2's io.weight: 1..10000).
	MaxIOWeight = 10000
	// MinSampleInterval and MaxSampleInterval bound max_memory_interval.
	MinSampleInterval = 100 * time.Millisecond
	MaxSampleInterval = time.Hour
	// MaxHookTimeout bounds hooks.timeout.
	MaxHookTimeout = 24 * time.Hour
	// DefaultEventBuffer is buffer_size's default (supervisord's) and
	// MaxEventBuffer its bound.
	DefaultEventBuffer = 10
	MaxEventBuffer     = 10000
	// MaxBacklog bounds a socket's backlog.
	MaxBacklog = 65535
	// MaxUnixPath is the longest unix socket path (sun_path holds 108
	// bytes with the terminating NUL on Linux, 104 on the BSDs).
	MaxUnixPath = 103
	// MaxEnvFileSize bounds one env_file file; MaxEnvFileVars the
	// variables it may set.
	MaxEnvFileSize = 1 << 20
	MaxEnvFileVars = 10000
	// MaxSockets bounds the [socket:NAME] sections of a config.
	MaxSockets = 1000
)

// DefaultFileMode is the default of stdout_stream.file_mode,
// stderr_stream.file_mode and [circled] logfile_mode: readable by the
// file's group (log shippers in adm, say), not by others.
const DefaultFileMode = 0o640

// parseIntRange parses an integer in lo..hi. Numbers too large for
// int64 are out of range too, not "invalid".
func parseIntRange(s string, lo, hi int) (int, error) {
	return parseIntRangeUnit(s, lo, hi, "")
}

// parseIntRangeUnit is parseIntRange with a unit in the message
// (" days").
func parseIntRangeUnit(s string, lo, hi int, unit string) (int, error) {
	t := strings.TrimSpace(s)
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%s is out of range (%d..%d%s)", t, lo, hi, unit)
		}
		return 0, fmt.Errorf("invalid integer %q", s)
	}
	if n < int64(lo) || n > int64(hi) {
		return 0, fmt.Errorf("%d is out of range (%d..%d%s)", n, lo, hi, unit)
	}
	return int(n), nil
}

// parseDurationMax parses a duration (see parseDuration) of at most max.
func parseDurationMax(s string, max time.Duration) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(t, 64); err == nil && !math.IsInf(f, 0) && f > max.Seconds() {
		// Seconds beyond time.Duration's range are out of range too.
		return 0, fmt.Errorf("duration %q is out of range (at most %s)", t, humanDuration(max))
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, err
	}
	if d > max {
		return 0, fmt.Errorf("duration %q is out of range (at most %s)", strings.TrimSpace(s), humanDuration(max))
	}
	return d, nil
}

// parseDurationRange parses a duration (see parseDuration) in lo..hi.
func parseDurationRange(s string, lo, hi time.Duration) (time.Duration, error) {
	d, err := parseDurationMax(s, hi)
	if err == nil && d < lo {
		err = fmt.Errorf("duration %q is out of range (%s..%s)", strings.TrimSpace(s), humanDuration(lo), humanDuration(hi))
	}
	return d, err
}

// parseSizeMax parses a size (see parseSize) of at most max bytes.
func parseSizeMax(s string, max int64) (int64, error) {
	n, err := parseSize(s)
	if err != nil {
		return 0, err
	}
	if n > max {
		return 0, fmt.Errorf("size %q is out of range (at most %s)", strings.TrimSpace(s), humanSize(max))
	}
	return n, nil
}

// humanDuration writes a bound the way the README does: "24h", "1h",
// "365 days".
func humanDuration(d time.Duration) string {
	switch {
	case d > 24*time.Hour && d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + " days"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

func humanSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + " " + u.s
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
