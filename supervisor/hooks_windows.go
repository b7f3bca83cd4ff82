package supervisor

import (
	"os"
	"os/exec"

	"github.com/circle-supervisor/circle/supervisor/config"
)

var shell = []string{"cmd", "/c"}

// hookAttr: Windows hooks run as circled's user.
func hookAttr(cmd *exec.Cmd, wc *config.Watcher) error { return nil }

// killHook kills the hook's process (the spawner's Job Object takes
// what it started when it is released).
func killHook(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}
