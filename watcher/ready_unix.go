//go:build unix

package watcher

import "syscall"

// checkSysProcAttr is how an exec check's command runs: in a process
// group of its own (killed whole on timeout), as the watcher's user.
func checkSysProcAttr(spec Spec) (*syscall.SysProcAttr, error) {
	cred, err := credential(spec)
	if err != nil {
		return nil, err
	}
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}, nil
}
