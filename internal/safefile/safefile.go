// Package safefile opens, renames and removes the files circled writes
// (log files, the pidfile) so that whoever else can write to their
// directory cannot steer root's circled to another file.
//
// On Unix a Dir is a directory descriptor. OpenDir resolves the path once,
// one component at a time, relative to the previous directory's
// descriptor and without following a symbolic link found in a directory
// that someone other than root (or circled's own user) can write. Every
// later operation is relative to that descriptor:
//   - the final component is never followed (O_NOFOLLOW; O_EXCL on create);
//   - only regular files are opened, checked with fstatat before the open
//     (so a FIFO or a device is never opened) and with fstat after it;
//   - in a directory others can write, a file with more than one hard link
//     is refused (it may be a link to a file elsewhere);
//   - opens never block (O_NONBLOCK, then cleared) and never acquire a
//     controlling terminal (O_NOCTTY);
//   - truncation (os.O_TRUNC) happens only after those checks;
//   - rename and remove act on directory entries (renameat, unlinkat),
//     which never follow symbolic links.
//
// On Windows a Dir is a path: opens refuse a symbolic link or a
// non-regular file found by Lstat just before, which is racy but Windows
// offers no O_NOFOLLOW equivalent through package os; circled on Windows
// runs its log directories under its own account.
package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

var (
	// ErrSymlink: the file is a symbolic link, which circled does not follow.
	ErrSymlink = errors.New("is a symbolic link; refusing to follow it")
	// ErrNotRegular: the file exists and is not a regular file.
	ErrNotRegular = errors.New("is not a regular file")
	// ErrHardLinked: a file with several hard links in a directory others
	// can write (it may be a link to a file elsewhere).
	ErrHardLinked = errors.New("has several hard links in a directory others can write; refusing it")
	// ErrUntrustedSymlink: a symbolic link in the directory path, found in
	// a directory others can write.
	ErrUntrustedSymlink = errors.New("is a symbolic link in a directory others can write; refusing to follow it")
)

// checkName accepts a single path component.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.ContainsRune(name, filepath.Separator) {
		return errors.New("not a plain file name")
	}
	return nil
}

// OpenAppendPath opens path for appending, creating it (and missing
// directories) with mode perm, with the checks of Dir.OpenFile.
func OpenAppendPath(path string, perm os.FileMode) (*os.File, error) {
	d, err := OpenDir(filepath.Dir(path), true)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.OpenFile(filepath.Base(path), os.O_WRONLY|os.O_APPEND|os.O_CREATE, perm)
}
