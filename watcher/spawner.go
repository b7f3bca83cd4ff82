package watcher

import (
	"os/exec"
	"time"
)

// DirectSpawner starts each process and waits for it in its own
// goroutine. It is for platforms without a reaper (Windows) and for
// tests; on Unix circled uses the supervisor's reaper instead, because a
// wait4(-1) reaper and exec.Cmd.Wait must never run in the same process.
//
// The per-OS startCmd starts cmd and returns a release function called
// once the process has been waited for (on Windows it closes the
// process's Job Object, which kills what is left of its tree).
type DirectSpawner struct{}

// Start implements Spawner.
func (DirectSpawner) Start(cmd *exec.Cmd, onExit func(ExitStatus)) (int, error) {
	release, err := startCmd(cmd)
	if err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	go func() {
		cmd.Wait()
		release()
		onExit(exitStatus(cmd.ProcessState, time.Now()))
	}()
	return pid, nil
}
