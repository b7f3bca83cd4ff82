package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvSocket is the environment variable systemd sets for Type=notify services.
const EnvSocket = "NOTIFY_SOCKET"

// writeTimeout bounds a send when the receiver's queue is full.
const writeTimeout = time.Second

// Notifier sends to one notification socket. The zero value, and a
// Notifier for "", send nothing.
type Notifier struct {
	socket string
}

// New returns a Notifier for socket: a path, or "@name" for an abstract
// socket; "" gives a Notifier that sends nothing.
func New(socket string) *Notifier { return &Notifier{socket: socket} }

// FromEnv returns a Notifier for $NOTIFY_SOCKET, and when unsetEnv is true
// removes the variable from the environment so that children started
// afterwards do not inherit it.
func FromEnv(unsetEnv bool) *Notifier {
	n := New(os.Getenv(EnvSocket))
	if unsetEnv {
		os.Unsetenv(EnvSocket)
	}
	return n
}

// Enabled reports whether n has a socket to send to.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// Socket is the address n sends to, "" when none.
func (n *Notifier) Socket() string {
	if n == nil {
		return ""
	}
	return n.socket
}

// Notify sends state, one or more newline-separated VAR=VALUE assignments
// ("READY=1", "STATUS=up\nREADY=1"), in one datagram. It returns
// (false, nil) when n has no socket, (true, nil) once the datagram is sent,
// and (false, err) when sending failed.
func (n *Notifier) Notify(state string) (bool, error) {
	if !n.Enabled() {
		return false, nil
	}
	addr, err := unixAddr(n.socket)
	if err != nil {
		return false, err
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	return true, nil
}

// Ready sends READY=1: startup (or a reload announced with Reloading) is
// complete.
func (n *Notifier) Ready() (bool, error) { return n.Notify("READY=1") }

// Reloading sends RELOADING=1 (with MONOTONIC_USEC on Linux, which
// Type=notify-reload requires). Send Ready once the reload is done,
// whether or not it succeeded.
func (n *Notifier) Reloading() (bool, error) {
	msg := "RELOADING=1"
	if usec, ok := monotonicUsec(); ok {
		msg += "\nMONOTONIC_USEC=" + strconv.FormatUint(usec, 10)
	}
	return n.Notify(msg)
}

// Stopping sends STOPPING=1: shutdown has begun.
func (n *Notifier) Stopping() (bool, error) { return n.Notify("STOPPING=1") }

// Status sends STATUS=s, shown by `systemctl status`. Newlines in s
// become spaces (the protocol is line based).
func (n *Notifier) Status(s string) (bool, error) {
	return n.Notify("STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

// Notify sends state to $NOTIFY_SOCKET as read now (see Notifier.Notify),
// as a supervised program calling sd_notify(3) does; (false, nil) when it
// is unset or empty.
func Notify(state string) (bool, error) { return New(os.Getenv(EnvSocket)).Notify(state) }

// Status sends STATUS=s to $NOTIFY_SOCKET as read now.
func Status(s string) (bool, error) { return New(os.Getenv(EnvSocket)).Status(s) }

// ErrUnsupported is returned for a NOTIFY_SOCKET that is not a unix socket
// (vsock:..., a relative path).
var ErrUnsupported = errors.New("sdnotify: unsupported NOTIFY_SOCKET address")

// unixAddr maps a NOTIFY_SOCKET value to a datagram address. An abstract
// name keeps its leading '@': the Go runtime turns it into the NUL byte of
// the abstract namespace.
func unixAddr(socket string) (*net.UnixAddr, error) {
	if !strings.HasPrefix(socket, "/") && !strings.HasPrefix(socket, "@") {
		return nil, fmt.Errorf("%w %q: want an absolute path or @abstract name", ErrUnsupported, socket)
	}
	if len(socket) < 2 {
		return nil, fmt.Errorf("%w %q: empty name", ErrUnsupported, socket)
	}
	return &net.UnixAddr{Name: socket, Net: "unixgram"}, nil
}
