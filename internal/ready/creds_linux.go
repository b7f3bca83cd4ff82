package ready

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

const abstractSupported = true

// oobSize holds SCM_CREDENTIALS and some SCM_RIGHTS (fds are closed).
var oobSize = unix.CmsgSpace(unix.SizeofUcred) + unix.CmsgSpace(4*64)

// enableCreds sets SO_PASSCRED: each datagram carries the sender's pid and
// uid, checked by the kernel.
func enableCreds(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	return serr
}

// parseCred reads SCM_CREDENTIALS.
func parseCred(m *unix.SocketControlMessage) (pid, uid int, ok bool) {
	if m.Header.Type != unix.SCM_CREDENTIALS {
		return 0, 0, false
	}
	c, err := unix.ParseUnixCredentials(m)
	if err != nil {
		return 0, 0, false
	}
	return int(c.Pid), int(c.Uid), true
}

// belongsTo reports whether pid is root, in root's process group (the
// watcher starts each process with Setpgid) or a descendant of root. A
// sender that has already exited (a short-lived systemd-notify) is
// accepted when uid (>= 0) is root's owner's uid.
func belongsTo(pid, uid, root int) bool {
	if pid <= 0 || root <= 0 {
		return false
	}
	if pid == root {
		return true
	}
	if pg, err := unix.Getpgid(pid); err == nil && pg == root {
		return true
	}
	p := pid
	for range 64 {
		pp, err := ppid(p)
		if err != nil {
			if uid >= 0 && os.IsNotExist(err) && p == pid {
				var st unix.Stat_t
				if unix.Stat("/proc/"+strconv.Itoa(root), &st) == nil {
					return int(st.Uid) == uid
				}
			}
			return false
		}
		if pp == root {
			return true
		}
		if pp <= 1 {
			return false
		}
		p = pp
	}
	return false
}

// ppid reads the parent pid from /proc/PID/stat.
func ppid(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, syscall.EINVAL
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, syscall.EINVAL
	}
	return strconv.Atoi(string(f[1]))
}
