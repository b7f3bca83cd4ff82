package watcher

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// checkSysProcAttr is how an exec check's command runs: suspended in a
// new process group, as the watcher's processes (startCmd puts it in a
// Job Object and resumes it).
func checkSysProcAttr(spec Spec) (*syscall.SysProcAttr, error) {
	return &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.CREATE_SUSPENDED}, nil
}
