//go:build linux

package main

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// children lists the pids whose parent is pid, from
// /proc/PID/task/*/children (each thread lists the children it forked).
func children(pid int) []int {
	base := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(base)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(base + "/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// comm is /proc/PID/comm without the newline, "" if gone.
func comm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procState is the state letter of /proc/PID/stat ('R', 'S', 'Z', ...),
// 0 when the pid does not exist.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// gone: the pid no longer exists or is a zombie (dead, not yet reaped).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	s := procState(pid)
	return s == 0 || s == 'Z' || s == 'X'
}

// cpuTicks is utime+stime of pid in clock ticks (USER_HZ).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state); utime is field 14, stime 15.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// rssThreads is VmRSS in KiB and Threads from /proc/PID/status.
func rssThreads(pid int) (rssKiB int64, threads int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1, -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return
}

// lastPID is the last pid the kernel allocated in our pid namespace.
func lastPID() int {
	b, _ := os.ReadFile("/proc/sys/kernel/ns_last_pid")
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

var pidMax = func() int {
	b, _ := os.ReadFile("/proc/sys/kernel/pid_max")
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}()

// pidRange is the pids allocated after from up to to, across a wrap.
func pidRange(from, to int) []int {
	var out []int
	if to >= from {
		for p := from + 1; p <= to; p++ {
			out = append(out, p)
		}
		return out
	}
	for p := from + 1; p < pidMax; p++ {
		out = append(out, p)
	}
	for p := 2; p <= to; p++ {
		out = append(out, p)
	}
	return out
}

// ppid is the parent of pid from /proc/PID/stat, 0 if gone.
func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// startTime is field 22 of /proc/PID/stat (clock ticks after boot).
func startTime(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 1 << 62
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 20 {
		return 1 << 62
	}
	n, _ := strconv.ParseInt(f[19], 10, 64)
	return n
}
