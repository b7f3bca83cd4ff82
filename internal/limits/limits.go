// Package limits puts the processes of a watcher under resource limits:
// memory_max, memory_high, cpu_max, pids_max and io_weight, enforced by
// the kernel, and max_memory, a graceful restart when a process and its
// descendants use more than a size.
//
// On Linux each process gets limit cgroups of its own, made by a Set:
//
//   - cgroup v1 (and the hybrid layout, whose controllers are all on v1):
//     one directory per controller that a set limit needs, under
//     circled's own cgroup in that controller:
//     <controller mount>/<own>/<parent>/<wid>.<seq>. Join returns them;
//     the child writes its pid into each cgroup.procs before it execs
//     (the watcher's trampoline), so nothing it forks escapes them.
//   - cgroup v2 (a pure unified hierarchy): one cgroup holds every
//     controller. A process already has a v2 cgroup of its own there
//     (internal/cgroup, process containment) and a process is in exactly
//     one v2 cgroup, so the limits go on that cgroup: Attach. Join makes a
//     v2 cgroup of its own only for a circled without containment.
//
// The kernel does the work: memory.max / memory.limit_in_bytes,
// memory.high / memory.soft_limit_in_bytes, cpu.max / cfs_quota_us,
// pids.max, io.weight / blkio(.bfq).weight. The OOM killer's kills are
// counted by the kernel (memory.events oom_kill, memory.oom_control
// oom_kill), so OOMKilled tells an out-of-memory kill from any other
// SIGKILL. max_memory is watched by an event where the kernel has one
// (v1: a memory.usage_in_bytes threshold through cgroup.event_control and
// an eventfd; v2: memory.events "high", memory.high being set to
// max_memory) and by sampling every MaxMemoryInterval only while the
// event cannot tell (usage above the size counts reclaimable page cache)
// or where there is no event; a Set without MaxMemory has no goroutine
// and no timer.
//
// The cgroupfs code of both versions is github.com/opencontainers/cgroups
// (runc's): mount and own-cgroup discovery, the v1/v2 limit files, the
// OOM kill counters, secure opens of cgroupfs files.
//
// On Windows, memory_max, cpu_max and pids_max map to Job Object limits
// (ApplyJob). Elsewhere nothing is enforced and Available says so.
package limits

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// DefaultMaxMemoryInterval is how often max_memory is sampled where no
// memory event tells it (max_memory_interval's default).
const DefaultMaxMemoryInterval = 5 * time.Second

// Limits are one watcher's limits, per process slot. Zero is unset.
type Limits struct {
	// MemoryMax is the hard memory limit in bytes (memory_max): past it
	// the kernel reclaims, then OOM-kills a process of the slot.
	MemoryMax int64
	// MemoryHigh is the soft limit in bytes (memory_high): on v2 the
	// processes are throttled and reclaimed above it; on v1 it is
	// memory.soft_limit_in_bytes (reclaimed first under memory pressure).
	MemoryHigh int64
	// CPUMax is the CPU cap in percent of one CPU (cpu_max = 20: a fifth
	// of one CPU; 150: one and a half).
	CPUMax float64
	// PidsMax bounds the tasks (processes and threads) of the slot.
	PidsMax int64
	// IOWeight is the proportional I/O weight, 1..10000, default 100
	// (io_weight, systemd's IOWeight= scale).
	IOWeight uint16
	// MaxMemory restarts the slot's process gracefully once it and its
	// descendants use more than this many bytes (max_memory); memory in
	// use is the cgroup's usage less its inactive file cache (the
	// "working set").
	MaxMemory int64
	// MaxMemoryInterval is the sampling period of MaxMemory where it is
	// sampled; 0 = DefaultMaxMemoryInterval.
	MaxMemoryInterval time.Duration
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool {
	return l.MemoryMax == 0 && l.MemoryHigh == 0 && l.CPUMax == 0 && l.PidsMax == 0 && l.IOWeight == 0 && l.MaxMemory == 0
}

// Keys names the config keys that are set, in a fixed order.
func (l Limits) Keys() []string {
	var k []string
	add := func(set bool, name string) {
		if set {
			k = append(k, name)
		}
	}
	add(l.MemoryMax != 0, "memory_max")
	add(l.MemoryHigh != 0, "memory_high")
	add(l.CPUMax != 0, "cpu_max")
	add(l.PidsMax != 0, "pids_max")
	add(l.IOWeight != 0, "io_weight")
	add(l.MaxMemory != 0, "max_memory")
	return k
}

func (l Limits) interval() time.Duration {
	if l.MaxMemoryInterval > 0 {
		return l.MaxMemoryInterval
	}
	return DefaultMaxMemoryInterval
}

// Problem is one limit that cannot be enforced, and why.
type Problem struct {
	Key    string // the config key: "memory_max", ...
	Reason string
}

// Unavailable is Available's error: the limits that cannot be enforced
// on this host. Config loading reports each Problem at its key.
type Unavailable struct {
	Problems []Problem
}

func (e *Unavailable) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Key + ": " + p.Reason)
	}
	return b.String()
}

// ErrUnsupported is returned by New where this system has no cgroups.
var ErrUnsupported = errors.New("resource limits need Linux cgroups (or a Windows Job Object)")

// validate checks the values themselves (config bounds them further).
func validate(l Limits) []Problem {
	var ps []Problem
	neg := func(v int64, key string) {
		if v < 0 {
			ps = append(ps, Problem{key, fmt.Sprintf("%d is negative", v)})
		}
	}
	neg(l.MemoryMax, "memory_max")
	neg(l.MemoryHigh, "memory_high")
	neg(l.PidsMax, "pids_max")
	neg(l.MaxMemory, "max_memory")
	if l.CPUMax != 0 && (math.IsNaN(l.CPUMax) || l.CPUMax < 1 || l.CPUMax > maxCPUPercent) {
		ps = append(ps, Problem{"cpu_max", fmt.Sprintf("%v%% is outside 1..%d (percent of one CPU)", l.CPUMax, maxCPUPercent)})
	}
	if l.IOWeight > 10000 {
		ps = append(ps, Problem{"io_weight", fmt.Sprintf("%d is outside 1..10000", l.IOWeight)})
	}
	if l.MaxMemoryInterval < 0 {
		ps = append(ps, Problem{"max_memory_interval", "is negative"})
	}
	return ps
}

// maxCPUPercent is the largest cpu_max: 1024 CPUs.
const maxCPUPercent = 102400

// cpuQuota is cpu_max as a CFS quota per cfsPeriod microseconds.
const cfsPeriod = 100000

func cpuQuota(pct float64) int64 {
	q := int64(math.Round(pct / 100 * cfsPeriod))
	return max(q, 1000) // the kernel's minimum quota: 1 ms
}

func problems(ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	return &Unavailable{Problems: ps}
}
