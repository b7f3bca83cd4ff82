//go:build unix

package sockets

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// Bind binds (and for SOCK_STREAM listens on) the socket c describes:
//   - AF_INET, AF_INET6: host resolved in that family (localhost is
//     127.0.0.1 or ::1), SO_REUSEADDR as circus sets it, SO_REUSEPORT
//     with so_reuseport, SO_BINDTODEVICE with interface (Linux);
//   - AF_UNIX: every directory from / to the socket's must be owned by
//     root or circled's user and not writable by others unless sticky
//     (the control socket's rule); an existing file at the path is an
//     error unless it is a socket owned by root or circled's user and
//     replace is set, then it is unlinked (never through a symlink); the
//     socket file gets mode 0777 &^ umask when umask is set;
//   - the descriptor is non-blocking unless blocking is set.
//
// Errors name the socket.
func Bind(c config.Socket) (*Socket, error) {
	s, err := bind(c)
	if err != nil {
		return nil, fmt.Errorf("socket %s (%s): %w", c.Name, c.Addr(), err)
	}
	return s, nil
}

func bind(c config.Socket) (*Socket, error) {
	typ := unix.SOCK_STREAM
	if c.Type == "SOCK_DGRAM" {
		typ = unix.SOCK_DGRAM
	}
	var sa unix.Sockaddr
	family := unix.AF_INET
	switch c.Family {
	case "AF_UNIX":
		family = unix.AF_UNIX
		if err := prepareUnixPath(c); err != nil {
			return nil, err
		}
		sa = &unix.SockaddrUnix{Name: c.Path}
	case "AF_INET6":
		family = unix.AF_INET6
		ip, err := resolve(c.Host, "ip6")
		if err != nil {
			return nil, err
		}
		a := &unix.SockaddrInet6{Port: c.Port}
		copy(a.Addr[:], ip.To16())
		if ip.IsLinkLocalUnicast() && c.Interface != "" {
			if ifi, err := net.InterfaceByName(c.Interface); err == nil {
				a.ZoneId = uint32(ifi.Index)
			}
		}
		sa = a
	default:
		ip, err := resolve(c.Host, "ip4")
		if err != nil {
			return nil, err
		}
		a := &unix.SockaddrInet4{Port: c.Port}
		copy(a.Addr[:], ip.To4())
		sa = a
	}

	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, typ, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if family != unix.AF_UNIX {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return nil, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
		}
		if c.ReusePort {
			if err := setReusePort(fd); err != nil {
				return nil, err
			}
		}
		if c.Interface != "" {
			if err := bindToDevice(fd, c.Interface); err != nil {
				return nil, err
			}
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	s := &Socket{Config: c}
	if family == unix.AF_UNIX {
		var st unix.Stat_t
		if err := unix.Lstat(c.Path, &st); err == nil {
			s.path, s.dev, s.ino = c.Path, uint64(st.Dev), uint64(st.Ino)
		}
		if c.Umask >= 0 {
			// The file was made with circled's umask; the dir is
			// trusted, so nobody swapped it since.
			if err := os.Chmod(c.Path, os.FileMode(0o777&^c.Umask)); err != nil {
				unix.Unlink(c.Path)
				return nil, err
			}
		}
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, c.Backlog); err != nil {
			if s.path != "" {
				unix.Unlink(s.path)
			}
			return nil, os.NewSyscallError("listen", err)
		}
	}
	s.Addr = c.Addr()
	if family != unix.AF_UNIX {
		if got, err := unix.Getsockname(fd); err == nil {
			s.Addr = sockaddrString(got)
		}
	}
	// The file is made while the descriptor is blocking, so that os
	// treats it as a plain file (no poller, and Fd, which os/exec calls,
	// leaves the mode alone); then the socket's mode is set.
	s.File = os.NewFile(uintptr(fd), "socket:"+c.Name)
	if !c.Blocking {
		if err := unix.SetNonblock(fd, true); err != nil {
			s.File.Close()
			if s.path != "" {
				unix.Unlink(s.path)
			}
			ok = true // closed above
			return nil, os.NewSyscallError("fcntl O_NONBLOCK", err)
		}
	}
	ok = true
	return s, nil
}

// resolve finds host's address in network "ip4" or "ip6".
func resolve(host, network string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		if (ip.To4() != nil) != (network == "ip4") {
			return nil, fmt.Errorf("address %s is not of the socket's family", host)
		}
		return ip, nil
	}
	a, err := net.ResolveIPAddr(network, host)
	if err != nil {
		return nil, err
	}
	return a.IP, nil
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrInet6:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	}
	return ""
}

// prepareUnixPath checks the socket's directories and deals with a file
// already at the path.
func prepareUnixPath(c config.Socket) error {
	if err := checkDir(filepath.Dir(c.Path)); err != nil {
		return err
	}
	fi, err := os.Lstat(c.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link; refusing to follow or remove it", c.Path)
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("%s exists and is not a socket; refusing to remove it", c.Path)
	case !c.Replace:
		return fmt.Errorf("%s exists (replace = true removes a stale socket file)", c.Path)
	}
	if uid := ownerOf(fi); !trusted(uid) {
		return fmt.Errorf("%s is a socket owned by uid %d, not by root or circled's user; refusing to remove it", c.Path, uid)
	}
	// unlink never follows a symlink; the directory is trusted, so the
	// socket checked above is what goes.
	if err := unix.Unlink(c.Path); err != nil && !errors.Is(err, unix.ENOENT) {
		return os.NewSyscallError("unlink "+c.Path, err)
	}
	return nil
}

// removeIfSame unlinks path if it is still the socket file (dev, ino).
func removeIfSame(path string, dev, ino uint64) {
	var st unix.Stat_t
	if unix.Lstat(path, &st) == nil && uint64(st.Dev) == dev && uint64(st.Ino) == ino && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		unix.Unlink(path)
	}
}

func trusted(uid int) bool { return uid == 0 || uid == os.Geteuid() }

func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// maxLinks bounds the symlinks followed, as the kernel does (ELOOP).
const maxLinks = 40

// checkDir checks every directory from / down to dir, following
// symlinks owned by root or circled's user: each must be owned by root or
// circled's user and not writable by group or others unless sticky (the
// rule of the control socket, ctl/sockperm_unix.go), so that nobody else
// can swap the socket file or a directory on its way.
func checkDir(dir string) error {
	check := func(p string, fi fs.FileInfo) error {
		if !fi.IsDir() {
			return fmt.Errorf("%s on the way to the socket is not a directory", p)
		}
		uid := ownerOf(fi)
		writable := fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0
		if trusted(uid) && !writable {
			return nil
		}
		return fmt.Errorf("unsafe directory %s on the way to the socket: owned by uid %d with mode %04o; it must be owned by root or circled's user and not writable by group or others (unless sticky, like /tmp)", p, uid, fi.Mode().Perm())
	}
	fi, err := os.Lstat("/")
	if err != nil {
		return err
	}
	if err := check("/", fi); err != nil {
		return err
	}
	cur := "/"
	rest := splitPath(filepath.Clean(dir))
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return err
		}
		if fi.Mode().Type() == fs.ModeSymlink {
			if uid := ownerOf(fi); !trusted(uid) {
				return fmt.Errorf("unsafe symlink %s on the way to the socket: owned by uid %d", next, uid)
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
		if err := check(next, fi); err != nil {
			return err
		}
		cur = next
	}
	return nil
}

func splitPath(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}
