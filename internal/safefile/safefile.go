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
