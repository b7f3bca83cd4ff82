//go:build unix

package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// closeInheritedFDs marks every descriptor circled inherited above stderr
// close-on-exec, so none reaches a child: a root circled started with
// `7</root/secret` must not hand that file to a watcher running as nobody
// (supervisord closes every fd above 2 in the child). circled itself keeps
// using what it needs; only the --daemon ready pipe is left inheritable,
// because circled may re-execute itself (clearInheritedSignalMask) before
// it reports.
func closeInheritedFDs() {
	keep := -1
	if v := os.Getenv(readyFDEnv); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 2 {
			keep = n
		}
	}
	if markRangeCloexec(keep) {
		return
	}
	// No close_range (not Linux, or a kernel before 5.11): list them.
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 && fd != keep {
				unix.CloseOnExec(fd)
			}
		}
		return
	}
}
