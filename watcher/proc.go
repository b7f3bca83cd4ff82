package watcher

import (
	"os/exec"
	"path/filepath"
	"strings"
)

// The per-OS files (proc_unix.go, proc_windows.go) implement:
//
//	buildCmd(spec, wid, argv, env, dir) (*exec.Cmd, error)  // own process group, credentials, limits
//	signalProc(pid int, sig string, group bool) error   // sig is a name ("TERM") or number
//	killGroup(pid int)                                  // SIGKILL to the group led by pid
//
// and exit statuses are converted by exitStatus in the same files.

// lookPath finds argv0 in the child's PATH (from env), falling back to
// circled's own, the way a shell started with env would.
func lookPath(argv0 string, env []string) (string, error) {
	if strings.ContainsRune(argv0, filepath.Separator) || strings.Contains(argv0, "/") {
		return argv0, nil
	}
	for _, kv := range env {
		if path, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, dir := range filepath.SplitList(path) {
				if dir == "" {
					dir = "."
				}
				if p, err := exec.LookPath(filepath.Join(dir, argv0)); err == nil {
					return p, nil
				}
			}
			break
		}
	}
	return exec.LookPath(argv0)
}
