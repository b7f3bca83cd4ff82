package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// leftChildren lists circled's live children (zombies excluded: the
// reaper takes those), from /proc/self/task/*/children. After the
// watchers have stopped, these are only processes that really were left
// over: with a cgroup per process a watcher's stop waits until its
// cgroup is empty, and without one until its process group is; what is
// left escaped its group (setsid, a double fork) where no cgroup
// contained it.
func leftChildren() []int {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(field)
			if err != nil || zombie(pid) {
				continue
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// describeProc is "PID (COMMAND LINE)" for the final sweep's warnings,
// with the watcher and slot the process inherited from its environment
// (CIRCLED_WATCHER, CIRCLED_WID) when it can be read.
func describeProc(pid int) string {
	dir := "/proc/" + strconv.Itoa(pid)
	cmd := ""
	if b, err := os.ReadFile(dir + "/cmdline"); err == nil {
		cmd = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	if cmd == "" {
		if b, err := os.ReadFile(dir + "/comm"); err == nil {
			cmd = "[" + strings.TrimSpace(string(b)) + "]"
		}
	}
	s := strconv.Itoa(pid) + " (" + cmd + ")"
	if b, err := os.ReadFile(dir + "/environ"); err == nil {
		var w, wid string
		for _, kv := range strings.Split(string(b), "\x00") {
			if v, ok := strings.CutPrefix(kv, "CIRCLED_WATCHER="); ok {
				w = v
			} else if v, ok := strings.CutPrefix(kv, "CIRCLED_WID="); ok {
				wid = v
			}
		}
		if w != "" {
			s += " of " + w
			if wid != "" {
				s += "." + wid
			}
		}
	}
	return s
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}
