//go:build unix

package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks bounds the symbolic links followed while resolving a
// directory, like the kernel's MAXSYMLINKS.
const maxSymlinks = 40

// Dir is an open directory: a descriptor checked once, by OpenDir.
type Dir struct {
	fd        int
	path      string
	untrusted bool
}

// OpenDir opens the directory path. It walks the path one component at a
// time from "/", each relative to the previous directory's descriptor and
// without following a final symbolic link; a symbolic link is followed
// only when the directory holding it is trusted (owned by root or by
// circled's user and writable by nobody else). With create, missing
// directories are made (mode 0755).
func OpenDir(path string, create bool) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fd, trusted, err := openRoot()
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/", Err: err}
	}
	comps := split(abs)
	cur := "/"
	links := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		if c == "." {
			continue
		}
		next := filepath.Join(cur, c)
		nfd, err := openDirAt(fd, c)
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return nil, &os.PathError{Op: "mkdir", Path: next, Err: err}
			}
			nfd, err = openDirAt(fd, c)
		}
		if err != nil {
			var st unix.Stat_t
			if fstatat(fd, c, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				if !trusted {
					unix.Close(fd)
					return nil, &os.PathError{Op: "open", Path: next, Err: fmt.Errorf("%w (%s)", ErrUntrustedSymlink, cur)}
				}
				if links++; links > maxSymlinks {
					unix.Close(fd)
					return nil, &os.PathError{Op: "open", Path: abs, Err: unix.ELOOP}
				}
				target, err := readlinkat(fd, c)
				if err != nil {
					unix.Close(fd)
					return nil, &os.PathError{Op: "readlink", Path: next, Err: err}
				}
				if filepath.IsAbs(target) {
					unix.Close(fd)
					if fd, trusted, err = openRoot(); err != nil {
						return nil, &os.PathError{Op: "open", Path: "/", Err: err}
					}
					cur = "/"
				}
				comps = append(split(target), comps...)
				continue
			}
			unix.Close(fd)
			return nil, &os.PathError{Op: "open", Path: next, Err: err}
		}
		unix.Close(fd)
		fd, cur = nfd, next
		if trusted, err = isTrusted(fd); err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "stat", Path: cur, Err: err}
		}
	}
	return &Dir{fd: fd, path: filepath.Clean(abs), untrusted: !trusted}, nil
}

func split(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func openRoot() (int, bool, error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Open("/", dirOpenFlags|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return -1, false, err
	}
	trusted, err := isTrusted(fd)
	if err != nil {
		unix.Close(fd)
		return -1, false, err
	}
	return fd, trusted, nil
}

func openDirAt(dirfd int, name string) (int, error) {
	return ignoringEINTR(func() (int, error) {
		return unix.Openat(dirfd, name, dirOpenFlags|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
}

// isTrusted: owned by root or by circled's user, and writable by no
// group and no other user.
func isTrusted(fd int) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	owner := st.Uid == 0 || int(st.Uid) == os.Geteuid()
	return owner && st.Mode&0o022 == 0, nil
}

func fstatat(dirfd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if err != unix.EINTR {
			return err
		}
	}
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		fd, err := f()
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// Path is the directory's absolute path (for messages).
func (d *Dir) Path() string { return d.path }

// Trusted reports whether only root or circled's user can write the
// directory.
func (d *Dir) Trusted() bool { return !d.untrusted }

// Close closes the directory descriptor.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return os.ErrClosed
	}
	fd := d.fd
	d.fd = -1
	return unix.Close(fd)
}

func (d *Dir) pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: filepath.Join(d.path, name), Err: err}
}

// check refuses what OpenFile must not open or keep open.
func (d *Dir) check(name string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return d.pathErr("open", name, ErrSymlink)
	default:
		return d.pathErr("open", name, fmt.Errorf("%w (%s)", ErrNotRegular, typeName(uint32(st.Mode))))
	}
	if d.untrusted && st.Nlink > 1 {
		return d.pathErr("open", name, ErrHardLinked)
	}
	return nil
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return "an unknown file type"
}

// OpenFile opens the regular file name in d. flag is os.O_RDONLY,
// os.O_WRONLY or os.O_RDWR with os.O_APPEND, os.O_CREATE, os.O_EXCL and
// os.O_TRUNC. A symbolic link at name is never followed; anything but a
// regular file is refused without being opened. A file OpenFile creates
// gets exactly perm (whatever the umask); an existing file keeps its mode.
// O_TRUNC truncates only after the checks.
func (d *Dir) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, d.pathErr("open", name, err)
	}
	sys := flag&(os.O_RDONLY|os.O_WRONLY|os.O_RDWR|os.O_APPEND) |
		unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY
	fd, created := -1, false
	for try := 0; fd < 0; try++ {
		if flag&os.O_CREATE != 0 {
			var err error
			fd, err = ignoringEINTR(func() (int, error) {
				return unix.Openat(d.fd, name, sys|unix.O_CREAT|unix.O_EXCL, uint32(perm.Perm()))
			})
			if err == nil {
				created = true
				break
			}
			if err != unix.EEXIST || flag&os.O_EXCL != 0 {
				return nil, d.pathErr("open", name, err)
			}
		}
		// It exists: look before opening, so that a FIFO or a device is
		// never opened.
		var st unix.Stat_t
		err := fstatat(d.fd, name, &st)
		if err == nil {
			if err := d.check(name, &st); err != nil {
				return nil, err
			}
			fd, err = ignoringEINTR(func() (int, error) { return unix.Openat(d.fd, name, sys, 0) })
		}
		if err != nil {
			if err == unix.ENOENT && flag&os.O_CREATE != 0 && try < 3 {
				continue // removed meanwhile: create it
			}
			if err == unix.ELOOP || err == unix.EMLINK {
				err = ErrSymlink // replaced by a link meanwhile
			}
			return nil, d.pathErr("open", name, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, d.pathErr("stat", name, err)
	}
	if err := d.check(name, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if created && os.FileMode(st.Mode&0o7777) != perm.Perm() {
		if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
			unix.Close(fd)
			return nil, d.pathErr("chmod", name, err)
		}
	}
	if flag&os.O_TRUNC != 0 && st.Size > 0 {
		if err := unix.Ftruncate(fd, 0); err != nil {
			unix.Close(fd)
			return nil, d.pathErr("truncate", name, err)
		}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, d.pathErr("open", name, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(d.path, name)), nil
}

// Rename renames oldname to newname within d (renameat: neither name is
// followed if it is a symbolic link).
func (d *Dir) Rename(oldname, newname string) error {
	if err := checkName(oldname); err != nil {
		return d.pathErr("rename", oldname, err)
	}
	if err := checkName(newname); err != nil {
		return d.pathErr("rename", newname, err)
	}
	if err := unix.Renameat(d.fd, oldname, d.fd, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: filepath.Join(d.path, oldname), New: filepath.Join(d.path, newname), Err: err}
	}
	return nil
}

// Remove removes the entry name (not a directory) from d; a symbolic link
// is removed, never its target.
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return d.pathErr("remove", name, err)
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return d.pathErr("remove", name, err)
	}
	return nil
}

// Exists reports whether d has an entry name (of any type).
func (d *Dir) Exists(name string) bool {
	var st unix.Stat_t
	return checkName(name) == nil && fstatat(d.fd, name, &st) == nil
}

// ReadDir lists d's entries.
func (d *Dir) ReadDir() ([]fs.DirEntry, error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	return f.ReadDir(-1)
}
