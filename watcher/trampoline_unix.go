//go:build unix

package watcher

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

var rlimitResources = map[string]int{
	"as":     unix.RLIMIT_AS,
	"core":   unix.RLIMIT_CORE,
	"cpu":    unix.RLIMIT_CPU,
	"data":   unix.RLIMIT_DATA,
	"fsize":  unix.RLIMIT_FSIZE,
	"nofile": unix.RLIMIT_NOFILE,
	"stack":  unix.RLIMIT_STACK,
}

func wrapTrampoline(cmd *exec.Cmd, spec Spec) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("umask/rlimit need circled's own path: %w", err)
	}
	var lims []string
	for _, r := range spec.Rlimits {
		if _, ok := rlimitResource(r.Name); !ok {
			return fmt.Errorf("rlimit_%s is not supported on this system", r.Name)
		}
		lims = append(lims, r.Name+"="+strconv.FormatUint(r.Value, 10))
	}
	args := []string{self, trampolineArg, strconv.Itoa(spec.Umask), strings.Join(lims, ","), cmd.Path}
	cmd.Args = append(args, cmd.Args...)
	cmd.Path = self
	return nil
}

// RunTrampolineIfRequested turns this process into the trampoline when
// started as one; it never returns then.
func RunTrampolineIfRequested() {
	if len(os.Args) < 6 || os.Args[1] != trampolineArg {
		return
	}
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "circled: %v\n", err)
		os.Exit(127)
	}
	if m, err := strconv.Atoi(os.Args[2]); err == nil && m >= 0 {
		unix.Umask(m)
	}
	if os.Args[3] != "" {
		for _, kv := range strings.Split(os.Args[3], ",") {
			name, val, _ := strings.Cut(kv, "=")
			res, ok := rlimitResource(name)
			v, err := strconv.ParseUint(val, 10, 64)
			if !ok || err != nil {
				fail(fmt.Errorf("bad rlimit %q", kv))
			}
			var lim unix.Rlimit
			setBoth(&lim.Cur, &lim.Max, v)
			if err := unix.Setrlimit(res, &lim); err != nil {
				fail(fmt.Errorf("rlimit_%s=%s: %w", name, val, err))
			}
		}
	}
	path := os.Args[4]
	if err := syscall.Exec(path, os.Args[5:], os.Environ()); err != nil {
		fail(fmt.Errorf("exec %s: %w", path, err))
	}
}

// setBoth sets a limit's soft and hard values whatever the platform's
// field type; "unlimited" (all ones) becomes the largest value.
func setBoth[T ~int64 | ~uint64](cur, max *T, v uint64) {
	x := T(v)
	if x < 0 {
		x = T(v >> 1) // all ones shifted: the largest signed value
	}
	*cur, *max = x, x
}
