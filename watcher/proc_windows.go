package watcher

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// On Windows each process gets its own process group; Job Objects and
// CTRL_BREAK delivery come with the Windows issue. Until then every stop
// signal terminates the process.

func buildCmd(spec Spec, argv, env []string, dir string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	if spec.UID != nil || spec.GID != nil || spec.Umask >= 0 || len(spec.Rlimits) > 0 {
		return nil, fmt.Errorf("uid, gid, umask and rlimit_* are not supported on windows")
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Dir: dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
	return cmd, nil
}

func signalProc(pid int, sig string, group bool) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

// RunTrampolineIfRequested is a no-op on Windows.
func RunTrampolineIfRequested() {}

func exitStatus(ps *os.ProcessState, t time.Time) ExitStatus {
	return ExitStatus{Code: ps.ExitCode(), Time: t}
}
