//go:build unix

package supervisor

import (
	"os"
	"os/exec"
	"syscall"

	"github.com/circle-supervisor/circle/supervisor/config"
)

var shell = []string{"/bin/sh", "-c"}

// hookAttr puts the hook in a process group of its own (killed whole at
// the timeout) and, when circled is root, runs it as the watcher's user.
func hookAttr(cmd *exec.Cmd, wc *config.Watcher) error {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if os.Geteuid() == 0 && (wc.UID != nil || wc.GID != nil) {
		cred := &syscall.Credential{Uid: 0, Gid: 0}
		if wc.UID != nil {
			cred.Uid = uint32(*wc.UID)
		}
		if wc.GID != nil {
			cred.Gid = uint32(*wc.GID)
		}
		for _, g := range wc.Groups {
			cred.Groups = append(cred.Groups, uint32(g))
		}
		attr.Credential = cred
	}
	cmd.SysProcAttr = attr
	return nil
}

// killHook kills the hook's process group.
func killHook(pid int) {
	syscall.Kill(-pid, syscall.SIGKILL)
}
