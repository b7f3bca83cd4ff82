//go:build unix

package logs

import (
	"io/fs"
	"os"
	"syscall"
)

// chownLike gives f (through its descriptor) the owner of fi's file when
// circled runs as root, as lumberjack did for new files and backups.
func chownLike(f *os.File, fi fs.FileInfo) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 || (st.Uid == 0 && st.Gid == 0) {
		return
	}
	f.Chown(int(st.Uid), int(st.Gid))
}
