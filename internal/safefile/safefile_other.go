//go:build !unix

package safefile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Dir is a directory path (see the package comment for what Windows
// checks).
type Dir struct {
	path   string
	closed bool
}

// OpenDir checks that path is a directory, making it (and its parents)
// with create.
func OpenDir(path string, create bool) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if create {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, err
		}
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &os.PathError{Op: "open", Path: abs, Err: fmt.Errorf("not a directory")}
	}
	return &Dir{path: abs}, nil
}

// Path is the directory's absolute path.
func (d *Dir) Path() string { return d.path }

// Trusted is always true here.
func (d *Dir) Trusted() bool { return true }

// Close marks d closed.
func (d *Dir) Close() error {
	if d.closed {
		return os.ErrClosed
	}
	d.closed = true
	return nil
}

func (d *Dir) pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: filepath.Join(d.path, name), Err: err}
}

// OpenFile opens the regular file name in d, refusing a symbolic link or
// anything else that is not a regular file (checked by Lstat first).
func (d *Dir) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, d.pathErr("open", name, err)
	}
	p := filepath.Join(d.path, name)
	if fi, err := os.Lstat(p); err == nil {
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, d.pathErr("open", name, ErrSymlink)
		case !fi.Mode().IsRegular():
			return nil, d.pathErr("open", name, ErrNotRegular)
		}
	}
	return os.OpenFile(p, flag, perm)
}

// Rename renames oldname to newname within d.
func (d *Dir) Rename(oldname, newname string) error {
	if err := checkName(oldname); err != nil {
		return d.pathErr("rename", oldname, err)
	}
	if err := checkName(newname); err != nil {
		return d.pathErr("rename", newname, err)
	}
	return os.Rename(filepath.Join(d.path, oldname), filepath.Join(d.path, newname))
}

// Remove removes the entry name from d.
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return d.pathErr("remove", name, err)
	}
	return os.Remove(filepath.Join(d.path, name))
}

// Exists reports whether d has an entry name.
func (d *Dir) Exists(name string) bool {
	if checkName(name) != nil {
		return false
	}
	_, err := os.Lstat(filepath.Join(d.path, name))
	return err == nil
}

// ReadDir lists d's entries.
func (d *Dir) ReadDir() ([]fs.DirEntry, error) { return os.ReadDir(d.path) }
