package main

import (
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// unmaskedEnv guards against re-executing more than once.
const unmaskedEnv = "CIRCLED_SIGMASK_CLEARED"

// clearInheritedSignalMask makes sure children never inherit a signal
// mask circled was started with: Go starts every child with the mask the
// process started with, so if it is not empty circled re-executes itself
// once with an empty mask (the calling thread's mask survives execve).
func clearInheritedSignalMask() {
	if os.Getenv(unmaskedEnv) != "" {
		os.Unsetenv(unmaskedEnv)
		return
	}
	runtime.LockOSThread()
	var old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, nil, &old); err != nil || old == (unix.Sigset_t{}) {
		runtime.UnlockOSThread()
		return
	}
	exe, err := os.Executable()
	if err != nil {
		runtime.UnlockOSThread()
		return
	}
	var empty unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, nil); err != nil {
		runtime.UnlockOSThread()
		return
	}
	syscall.Exec(exe, os.Args, append(os.Environ(), unmaskedEnv+"=1"))
	// Exec failed: carry on with the inherited mask.
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	runtime.UnlockOSThread()
}
