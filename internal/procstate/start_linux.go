package procstate

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// StartTime is pid's start time in clock ticks since boot, field 22 of
// /proc/PID/stat: it tells a process from a later one that reuses its
// pid.
func StartTime(pid int) (uint64, error) {
	st, err := Stat(pid)
	return st.Start, err
}

// ProcStat is what recovery needs of a process.
type ProcStat struct {
	PGID  int
	Start uint64
	State byte
}

// Stat reads pid's process group, start time and state from
// /proc/PID/stat.
func Stat(pid int) (ProcStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ProcStat{}, errors.New("malformed /proc stat")
	}
	// After "(comm)": state(3) ppid(4) pgrp(5) ... starttime(22).
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ProcStat{}, errors.New("malformed /proc stat")
	}
	pgid, err1 := strconv.Atoi(f[2])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ProcStat{}, err
	}
	return ProcStat{PGID: pgid, Start: start, State: f[0][0]}, nil
}

// Pids lists every process of the system.
func Pids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Cmdline is pid's command line, arguments joined by spaces.
func Cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
