//go:build unix

package ready

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// maxSockPath is the longest socket path accepted (sun_path is 104 bytes on
// the BSDs and macOS, 108 on Linux, with the NUL).
const maxSockPath = 103

// maxDatagram is systemd's NOTIFY_BUFFER_MAX (PIPE_BUF).
const maxDatagram = 4096

var socketSeq atomic.Uint64

func uniqueName() string {
	var b [6]byte
	rand.Read(b[:])
	return "notify-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(socketSeq.Add(1), 10) + "-" + hex.EncodeToString(b[:]) + ".sock"
}

// ListenNotify opens a notify socket (see NotifyOptions) and starts its
// reading goroutine, which sleeps in the runtime poller until a datagram
// comes: an idle process costs no wake-up.
func ListenNotify(opts NotifyOptions) (*NotifySocket, error) {
	name := opts.Name
	if name == "" {
		name = uniqueName()
	}
	var addr, path string
	switch {
	case opts.Abstract:
		if !abstractSupported {
			return nil, fmt.Errorf("ready: abstract notify sockets: %w", ErrNotSupported)
		}
		addr = "@circle/" + name
	case opts.Dir == "":
		return nil, errors.New("ready: notify socket: no directory")
	default:
		path = filepath.Join(opts.Dir, name)
		if !filepath.IsAbs(path) {
			return nil, fmt.Errorf("ready: notify socket %s: not an absolute path", path)
		}
		if len(path) > maxSockPath {
			return nil, fmt.Errorf("ready: notify socket %s: longer than %d bytes", path, maxSockPath)
		}
		addr = path
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("ready: notify socket: %w", err)
		}
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("ready: notify socket: %w", err)
	}
	fail := func(err error) (*NotifySocket, error) {
		conn.Close()
		if path != "" {
			os.Remove(path)
		}
		return nil, fmt.Errorf("ready: notify socket %s: %w", addr, err)
	}
	if path != "" {
		if os.Getuid() == 0 && opts.UID > 0 {
			if err := os.Chown(path, opts.UID, opts.GID); err != nil {
				return fail(err)
			}
		}
		if err := os.Chmod(path, 0o600); err != nil {
			return fail(err)
		}
	}
	if err := enableCreds(conn); err != nil {
		return fail(err)
	}
	n := newNotifySocket(addr, path, opts)
	n.start(conn)
	return n, nil
}

// start makes conn n's socket and starts reading it.
func (n *NotifySocket) start(conn *net.UnixConn) {
	path := n.path
	n.conn = conn
	n.closeFn = func() {
		conn.Close()
		if path != "" {
			os.Remove(path)
		}
	}
	go n.read(conn)
}

func (n *NotifySocket) read(conn *net.UnixConn) {
	defer close(n.readDone)
	buf := make([]byte, maxDatagram+1)
	oob := make([]byte, oobSize)
	for {
		nb, noob, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				n.hold() // Hand's wake-up: wait for Resume or Close
			}
			continue // a transient error (a truncated datagram, ENOBUFS): keep reading
		}
		d, ok := n.datagram(buf[:nb], oob[:noob])
		if !ok {
			continue
		}
		n.deliverMu.Lock()
		n.receive(d)
		n.deliverMu.Unlock()
	}
}

// datagram is a message read into buf with its control data oob, or
// false (counted as rejected) when it is larger than maxDatagram (buf
// has room for one byte more).
func (n *NotifySocket) datagram(buf, oob []byte) (datagram, bool) {
	if len(buf) > maxDatagram {
		n.mu.Lock()
		n.st.Rejected++
		n.mu.Unlock()
		return datagram{}, false
	}
	pid, uid, creds := parseOOB(oob)
	return datagram{data: append([]byte(nil), buf...), pid: pid, uid: uid, creds: creds}, true
}

// parseOOB returns the sender's credentials when the system gives them,
// and closes any passed fd (FDSTORE=1 is not supported).
func parseOOB(oob []byte) (pid, uid int, ok bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		if m.Header.Type == unix.SCM_RIGHTS {
			if fds, err := unix.ParseUnixRights(&m); err == nil {
				for _, fd := range fds {
					unix.Close(fd)
				}
			}
			continue
		}
		if p, u, good := parseCred(&m); good {
			pid, uid, ok = p, u, true
		}
	}
	return pid, uid, ok
}
