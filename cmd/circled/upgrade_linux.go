package main

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// stateFile puts data in a memfd.
func stateFile(dir string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("circled-upgrade", unix.MFD_CLOEXEC)
	if err != nil {
		return stateTempFile(dir, data)
	}
	f := os.NewFile(uintptr(fd), "circled-upgrade")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// withEmptySigmask runs f on a thread that blocks no signal: the new
// binary inherits the mask of the thread that executes it.
func withEmptySigmask(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var empty, old unix.Sigset_t
	if unix.PthreadSigmask(unix.SIG_SETMASK, &empty, &old) != nil {
		f()
		return
	}
	f()
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
}
