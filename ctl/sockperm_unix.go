//go:build unix

package ctl

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The ownership rule of the control socket, shared by circled and
// circlectl (the way ssh checks its files):
//
//   - Trusted owners are the process's effective uid and root; for root,
//     root only. (Root's circlectl does not talk to another user's
//     daemon: whoever owns that socket controls what answers. Run
//     circlectl as that user instead.)
//   - Every directory from / down to the socket's directory, following
//     symlinks, must be owned by a trusted owner and not writable by
//     group or others, unless it is sticky (like /tmp): in a sticky
//     directory only an entry's owner, the directory's owner and root can
//     rename or remove the entry, so a trusted entry stays put. Every
//     symlink on the way must be owned by a trusted owner.
//   - The socket must be a socket owned by a trusted owner. Its mode is
//     not checked: socket_mode may grant a group or everyone access on
//     purpose, and write permission on a socket only means "may connect".
//
// So the default /tmp/circled-$UID must be the user's own (0700 when
// circled creates it), and a socket directly in /tmp (socket = /tmp/x.sock)
// is accepted when the socket itself belongs to the user or root.

// trust is the set of uids a socket's path may belong to.
type trust []int

// socketTrust is the trusted owners for this process: its euid and root.
func socketTrust() trust {
	if e := os.Geteuid(); e != 0 {
		return trust{e, 0}
	}
	return trust{0}
}

func (t trust) has(uid int) bool {
	for _, u := range t {
		if u == uid {
			return true
		}
	}
	return false
}

// String is "nobody (uid 65534) or root", or "root".
func (t trust) String() string {
	names := make([]string, len(t))
	for i, u := range t {
		names[i] = userName(u)
	}
	return strings.Join(names, " or ")
}

// userName is "root", "alice (uid 1000)", or "uid 1000" when unknown.
func userName(uid int) string {
	if uid == 0 {
		return "root"
	}
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}

// unsafePathError says which file is unsafe, what was found and what is
// expected. It wraps ErrUnsafeSocket.
type unsafePathError struct {
	what string // "socket directory /tmp/x", "socket /tmp/x.sock", ...
	uid  int
	mode fs.FileMode
	want string
}

func (e *unsafePathError) Error() string {
	return fmt.Sprintf("unsafe %s: owned by %s with mode %s; it must be %s",
		e.what, userName(e.uid), octalMode(e.mode), e.want)
}

func (e *unsafePathError) Unwrap() error { return ErrUnsafeSocket }

// octalMode is the mode as chmod takes it: 0755, 1777.
func octalMode(m fs.FileMode) string {
	o := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		o |= 0o1000
	}
	if m&fs.ModeSetgid != 0 {
		o |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		o |= 0o4000
	}
	return fmt.Sprintf("%04o", o)
}

func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// maxLinks bounds the symlinks followed, as the kernel does (ELOOP).
const maxLinks = 40

// checkSocketDir checks every directory from / down to dir, following
// symlinks (see the rule above). A missing component is returned as an
// *fs.PathError wrapping fs.ErrNotExist; ensureDir creates it.
func checkSocketDir(dir string, t trust) error {
	if !filepath.IsAbs(dir) {
		a, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		dir = a
	}
	final := filepath.Clean(dir)
	want := t.String() + " and not writable by group or others (unless sticky, like /tmp)"
	checkDirInfo := func(p string, fi fs.FileInfo, last bool) error {
		if !fi.IsDir() {
			return fmt.Errorf("%s on the way to the socket is not a directory", p)
		}
		uid := ownerOf(fi)
		writable := fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0
		if t.has(uid) && !writable {
			return nil
		}
		what := "directory " + p + " on the way to the socket"
		if last {
			what = "socket directory " + p
		}
		return &unsafePathError{what: what, uid: uid, mode: fi.Mode(), want: "owned by " + want}
	}

	fi, err := os.Lstat("/")
	if err != nil {
		return err
	}
	if err := checkDirInfo("/", fi, final == "/"); err != nil {
		return err
	}
	cur := "/"
	rest := splitPath(final)
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			// cur holds no symlink, so its lexical parent is its real
			// parent, which was checked on the way down.
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return err
		}
		if fi.Mode().Type() == fs.ModeSymlink {
			if uid := ownerOf(fi); !t.has(uid) {
				return &unsafePathError{what: "symlink " + next + " on the way to the socket",
					uid: uid, mode: fi.Mode(), want: "owned by " + t.String()}
			}
			if links++; links > maxLinks {
				return &fs.PathError{Op: "resolve", Path: dir, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			rest = append(splitPath(target), rest...)
			continue
		}
		if err := checkDirInfo(next, fi, len(rest) == 0); err != nil {
			return err
		}
		cur = next
	}
	return nil
}

func splitPath(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

// checkSocketFile checks that fi (from Lstat of path) is a socket owned by
// a trusted owner.
func checkSocketFile(path string, fi fs.FileInfo, t trust) error {
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s is not a socket (mode %s)", path, fi.Mode())
	}
	if uid := ownerOf(fi); !t.has(uid) {
		return &unsafePathError{what: "socket " + path, uid: uid, mode: fi.Mode(),
			want: "a socket owned by " + t.String()}
	}
	return nil
}

// checkSocketPath is the client's check before it connects to path: the
// directories on the way and the socket itself (see the rule above). A
// missing socket or directory is an error wrapping fs.ErrNotExist, so the
// client does not connect to something created after the check.
func checkSocketPath(path string) error {
	t := socketTrust()
	if err := checkSocketDir(filepath.Dir(path), t); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	return checkSocketFile(path, fi, t)
}
