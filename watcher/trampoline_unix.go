//go:build unix

package watcher

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// trampoline is what the child applies between fork and the real exec.
type trampoline struct {
	umask   int // -1 = inherit
	rlimits []Rlimit
	// listenPID sets LISTEN_PID to the child's own pid.
	listenPID bool
	// join are cgroup directories the child writes its pid into
	// (cgroup.procs); then it takes cred, if any.
	join []string
	cred *syscall.Credential
}

func (t trampoline) needed() bool {
	return t.umask >= 0 || len(t.rlimits) > 0 || t.listenPID || len(t.join) > 0
}

// wrap makes cmd run the trampoline, which then execs cmd's program,
// when anything needs it. The arguments are:
//
//	self __circled-exec UMASK RLIMITS LISTEN CRED NJOIN DIR... PATH ARGV...
//
// RLIMITS is name=value,...; LISTEN is 1 or empty; CRED is empty or
// uid:gid:g1,g2,...; NJOIN counts the DIR arguments.
func (t trampoline) wrap(cmd *exec.Cmd) error {
	if !t.needed() {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("umask, rlimits, sockets and limit cgroups need circled's own path: %w", err)
	}
	var lims []string
	for _, r := range t.rlimits {
		if _, ok := rlimitResource(r.Name); !ok {
			return fmt.Errorf("rlimit_%s is not supported on this system", r.Name)
		}
		lims = append(lims, r.Name+"="+strconv.FormatUint(r.Value, 10))
	}
	listen := ""
	if t.listenPID {
		listen = "1"
	}
	cred := ""
	if c := t.cred; c != nil {
		groups := make([]string, len(c.Groups))
		for i, g := range c.Groups {
			groups[i] = strconv.FormatUint(uint64(g), 10)
		}
		cred = fmt.Sprintf("%d:%d:%s", c.Uid, c.Gid, strings.Join(groups, ","))
	}
	args := []string{self, trampolineArg, strconv.Itoa(t.umask), strings.Join(lims, ","), listen, cred, strconv.Itoa(len(t.join))}
	args = append(args, t.join...)
	args = append(args, cmd.Path)
	cmd.Args = append(args, cmd.Args...)
	cmd.Path = self
	return nil
}

// RunTrampolineIfRequested turns this process into the trampoline when
// started as one; it never returns then. A failure exits 127 with the
// reason on stderr, before the program runs.
func RunTrampolineIfRequested() {
	if len(os.Args) < 2 || os.Args[1] != trampolineArg {
		return
	}
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "circled: %v\n", err)
		os.Exit(127)
	}
	args := os.Args[2:]
	if len(args) < 6 {
		fail(fmt.Errorf("trampoline: %d arguments", len(args)))
	}
	umask, lims, listen, cred := args[0], args[1], args[2], args[3]
	n, err := strconv.Atoi(args[4])
	if err != nil || n < 0 || len(args) < 6+n {
		fail(fmt.Errorf("trampoline: bad cgroup count %q", args[4]))
	}
	join := args[5 : 5+n]
	path, argv := args[5+n], args[6+n:]

	// The cgroups first, while still privileged, so that the rest (and
	// everything the program forks) is accounted there.
	pid := strconv.Itoa(os.Getpid())
	for _, dir := range join {
		if err := writeProcs(dir, pid); err != nil {
			fail(fmt.Errorf("joining cgroup %s: %w", dir, err))
		}
	}
	if m, err := strconv.Atoi(umask); err == nil && m >= 0 {
		unix.Umask(m)
	}
	if lims != "" {
		for _, kv := range strings.Split(lims, ",") {
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
	if cred != "" {
		if err := setCred(cred); err != nil {
			fail(err)
		}
	}
	env := os.Environ()
	if listen == "1" {
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "LISTEN_PID=") })
		env = append(env, "LISTEN_PID="+pid)
	}
	if err := syscall.Exec(path, argv, env); err != nil {
		fail(fmt.Errorf("exec %s: %w", path, err))
	}
}

// writeProcs writes pid into dir's cgroup.procs.
func writeProcs(dir, pid string) error {
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(pid)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// setCred takes uid:gid:g1,g2,... (groups first, then gid, then uid, as
// exec.Cmd's Credential does). Go applies these to every thread.
func setCred(s string) error {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return fmt.Errorf("trampoline: bad credential %q", s)
	}
	uid, err1 := strconv.Atoi(parts[0])
	gid, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("trampoline: bad credential %q", s)
	}
	groups := []int{}
	if parts[2] != "" {
		for _, g := range strings.Split(parts[2], ",") {
			n, err := strconv.Atoi(g)
			if err != nil {
				return fmt.Errorf("trampoline: bad group %q", g)
			}
			groups = append(groups, n)
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	return nil
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
