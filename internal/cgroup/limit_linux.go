//go:build linux

package cgroup

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// TasksLimited reports whether a limit on the number of tasks (threads
// count) applies to circled now: a pids.max of its cgroup or of one
// above it, on the unified hierarchy or on a cgroup v1 pids hierarchy
// (systemd's TasksMax, docker's --pids-limit), or RLIMIT_NPROC for a
// user other than root (root is exempt). When it cannot tell, it says
// yes.
func TasksLimited() bool {
	if os.Getuid() != 0 {
		var rl unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NPROC, &rl) != nil || rl.Cur != unix.RLIM_INFINITY {
			return true
		}
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return true
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	for _, l := range strings.Split(string(b), "\n") {
		// "0::/path" (unified) or "N:ctrl,ctrl:/path" (v1).
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			if limitedUp(mi, "cgroup2", "", parts[2]) {
				return true
			}
		case hasWord(parts[1], "pids"):
			if limitedUp(mi, "cgroup", "pids", parts[2]) {
				return true
			}
		}
	}
	return false
}

// limitedUp reports whether pids.max is set (not "max") for cgroup own
// or any cgroup above it, on each mount of fstype (with super option
// opt, unless "") that shows it.
func limitedUp(mountinfo []byte, fstype, opt, own string) bool {
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || qf[0] != fstype || (opt != "" && !hasWord(qf[2], opt)) {
			continue
		}
		root, mp := unescape(pf[3]), unescape(pf[4])
		rel := own
		if root != "/" {
			r, ok := strings.CutPrefix(own, root)
			if !ok || (r != "" && r[0] != '/') {
				continue
			}
			rel = r
		}
		for dir := filepath.Join(mp, rel); ; dir = filepath.Dir(dir) {
			if v, err := readFile(filepath.Join(dir, "pids.max")); err == nil && strings.TrimSpace(string(v)) != "max" {
				return true
			}
			if dir == mp || len(dir) <= len(mp) {
				break
			}
		}
	}
	return false
}

// hasWord reports whether the comma-separated list s has w.
func hasWord(s, w string) bool {
	for _, f := range strings.Split(s, ",") {
		if f == w {
			return true
		}
	}
	return false
}
