//go:build unix

package watcher

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// buildCmd is buildCmdDone for callers that do not follow the
// process to its end: Join's done is dropped.
func buildCmd(spec Spec, wid int, argv, env []string, dir string) (*exec.Cmd, error) {
	cmd, _, err := buildCmdDone(spec, wid, argv, env, dir)
	return cmd, err
}

// buildCmdDone makes the command for slot wid's process. done, if not
// nil, is Spec.Join's: the caller calls it once the process has ended,
// or at once if it is not started. On an error there is no done (it
// has been called).
func buildCmdDone(spec Spec, wid int, argv, env []string, dir string) (cmd *exec.Cmd, done func(), err error) {
	if len(argv) == 0 {
		return nil, nil, fmt.Errorf("empty command")
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		return nil, nil, err
	}
	cmd = &exec.Cmd{Path: path, Args: argv, Env: env, Dir: dir}
	// A child never shares circled's controlling terminal: a
	// dropped-privilege child could open /dev/tty and push input into
	// root's terminal (TIOCSTI). When circled has one (it runs in the
	// foreground of a terminal), each child gets a session of its own
	// (setsid; pgid = pid). When it has none (a service, a container,
	// --daemon), no child can get it (only a session leader acquires a
	// terminal), and a process group of its own is enough (setpgid):
	// setsid also makes a scheduler autogroup per child, which was about
	// 1 ms of each restart on a busy 2-core machine.
	attr := &syscall.SysProcAttr{Setpgid: true}
	if hasCtty() {
		attr = &syscall.SysProcAttr{Setsid: true}
	}
	cred, err := credential(spec)
	if err != nil {
		return nil, nil, err
	}
	attr.Credential = cred
	cmd.SysProcAttr = attr

	tr := trampoline{umask: spec.Umask, rlimits: spec.Rlimits}
	// Sockets: descriptors 3, 4, ... and, with names, systemd's
	// socket-activation variables. LISTEN_PID must be the child's own
	// pid, known only in the child: the trampoline sets it.
	if len(spec.ListenNames) > 0 && len(spec.ListenNames) != len(spec.Files) {
		return nil, nil, fmt.Errorf("%d socket names for %d sockets", len(spec.ListenNames), len(spec.Files))
	}
	if len(spec.Files) > 0 {
		cmd.ExtraFiles = slices.Clone(spec.Files)
	}
	if len(spec.ListenNames) > 0 {
		for _, n := range spec.ListenNames {
			if n == "" || strings.ContainsAny(n, ":\x00") || len(n) > 255 {
				return nil, nil, fmt.Errorf("socket name %q cannot be in LISTEN_FDNAMES", n)
			}
		}
		cmd.Env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
			return strings.HasPrefix(kv, "LISTEN_FDS=") || strings.HasPrefix(kv, "LISTEN_FDNAMES=") || strings.HasPrefix(kv, "LISTEN_PID=")
		})
		cmd.Env = append(cmd.Env, "LISTEN_FDS="+strconv.Itoa(len(spec.Files)), "LISTEN_FDNAMES="+strings.Join(spec.ListenNames, ":"))
		tr.listenPID = true
	}
	// Limit cgroups: the child joins them itself before it execs, so
	// nothing it forks escapes them. It must still be privileged then,
	// so the trampoline changes user afterwards.
	if spec.Join != nil {
		dirs, d, err := spec.Join(wid)
		if err != nil {
			return nil, nil, fmt.Errorf("resource-limit cgroups: %w", err)
		}
		done = d
		if len(dirs) > 0 {
			tr.join = dirs
			tr.cred, attr.Credential = cred, nil
		}
	}
	if err := tr.wrap(cmd); err != nil {
		if done != nil {
			done() // the process will not start
		}
		return nil, nil, err
	}
	return cmd, done, nil
}

// hasCtty reports whether circled has a controlling terminal now:
// opening /dev/tty fails with ENXIO without one. Any other answer (no
// /dev/tty in a minimal container) falls back to tty_nr in
// /proc/self/stat; any doubt is yes.
func hasCtty() bool {
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
		return true
	}
	if err == unix.ENXIO {
		return false
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return true
	}
	// After "(comm)": state ppid pgrp session tty_nr ...
	f := strings.Fields(s[i+1:])
	return len(f) < 5 || f[4] != "0"
}

// credential is who the child runs as: nil (circled's credentials) when
// neither UID nor GID is set, else exactly UID, GID and Groups. The
// groups are always set (setgroups), so circled's supplementary groups
// never leak into a child that changes user or group.
func credential(spec Spec) (*syscall.Credential, error) {
	if spec.UID == nil && spec.GID == nil {
		return nil, nil
	}
	if spec.UID != nil && spec.GID == nil {
		return nil, fmt.Errorf("uid %d without a gid: the primary group is not known", *spec.UID)
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(*spec.GID)}
	if spec.UID != nil {
		cred.Uid = uint32(*spec.UID)
	}
	for _, g := range spec.Groups {
		cred.Groups = append(cred.Groups, uint32(g))
	}
	if sameCredential(cred) {
		// Nothing changes. Skipping it keeps an unprivileged circled able
		// to run a watcher as itself: setgroups needs CAP_SETGID even to
		// set the same list.
		return nil, nil
	}
	return cred, nil
}

// sameCredential reports whether circled already has exactly cred's ids
// and groups (real and effective).
func sameCredential(cred *syscall.Credential) bool {
	if uint32(os.Getuid()) != cred.Uid || uint32(os.Geteuid()) != cred.Uid ||
		uint32(os.Getgid()) != cred.Gid || uint32(os.Getegid()) != cred.Gid {
		return false
	}
	have, err := os.Getgroups()
	if err != nil {
		return false
	}
	set := map[uint32]bool{}
	for _, g := range have {
		set[uint32(g)] = true
	}
	want := map[uint32]bool{}
	for _, g := range cred.Groups {
		want[g] = true
	}
	if len(set) != len(want) {
		return false
	}
	for g := range want {
		if !set[g] {
			return false
		}
	}
	return true
}

// parseSignal turns "TERM", "SIGTERM" or "15" into a signal.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return syscall.Signal(n), nil
	}
	name := s
	if len(name) < 3 || name[:3] != "SIG" {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func signalProc(pid int, sig string, group bool) error {
	s, err := parseSignal(sig)
	if err != nil {
		return err
	}
	if group {
		err = unix.Kill(-pid, s)
		if err == unix.ESRCH {
			// The leader may have left its group (setpgid); reach it anyway.
			err = unix.Kill(pid, s)
		}
		return err
	}
	return unix.Kill(pid, s)
}

func killGroup(pid int) {
	unix.Kill(-pid, unix.SIGKILL)
}

// ExitFromWaitStatus converts a wait4 status.
func ExitFromWaitStatus(ws syscall.WaitStatus, t time.Time) ExitStatus {
	if ws.Signaled() {
		sig := ws.Signal()
		name := unix.SignalName(sig)
		if len(name) > 3 {
			name = name[3:]
		} else {
			name = strconv.Itoa(int(sig))
		}
		return ExitStatus{Code: -1, Signal: name, SignalNum: int(sig), Time: t}
	}
	return ExitStatus{Code: ws.ExitStatus(), Time: t}
}

func exitStatus(ps *os.ProcessState, t time.Time) ExitStatus {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		return ExitFromWaitStatus(ws, t)
	}
	return ExitStatus{Code: ps.ExitCode(), Time: t}
}

// startCmd starts cmd; nothing needs releasing after its wait on Unix.
func startCmd(cmd *exec.Cmd) (release func(), err error) {
	return func() {}, cmd.Start()
}
