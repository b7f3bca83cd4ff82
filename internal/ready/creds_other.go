//go:build unix && !linux

package ready

import (
	"net"

	"golang.org/x/sys/unix"
)

// Abstract sockets are Linux only.
const abstractSupported = false

var oobSize = unix.CmsgSpace(4 * 64)

// enableCreds: this system gives no SCM_CREDENTIALS; the socket file's
// owner and mode (0600) are the only check.
func enableCreds(*net.UnixConn) error { return nil }

// parseCred: no credentials are asked for here.
func parseCred(*unix.SocketControlMessage) (pid, uid int, ok bool) { return 0, 0, false }

func belongsTo(pid, uid, root int) bool { return true }
