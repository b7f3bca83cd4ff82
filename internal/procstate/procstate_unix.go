//go:build unix

package procstate

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// checkDir refuses a directory that someone other than circled's user
// (or root) owns or can write: whoever could write there could make root's
// circled signal any process.
func checkDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if uid := uint32(os.Geteuid()); st.Uid != uid && st.Uid != 0 {
		return fmt.Errorf("%s belongs to uid %d, not circled's user", dir, st.Uid)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("%s can be written by others (mode %#o)", dir, st.Mode&0o777)
	}
	return nil
}

func openExcl(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
}

// read loads the state file at path, or nil if there is none. It never
// follows a symbolic link, and refuses a file that is not a regular file
// of circled's user that only it can write.
func read(path string) (*State, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != uint32(os.Geteuid()) || st.Mode&0o022 != 0 {
		return nil, fmt.Errorf("%s: not a regular file of circled's user that only it can write; ignored", path)
	}
	s, err := decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// openAppend opens the file just written, never through a link.
func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}
