//go:build unix

package ready

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Hand stops reading the socket between two datagrams and returns what a
// live upgrade carries: its address, the process's pid, what it reported
// and the watchdog's due time, and a duplicate of its descriptor (close-
// on-exec: the caller clears it before exec). Datagrams sent from now on
// wait in the socket, and the watchdog timer stops: a ping the process
// sends in time waits in the socket too, so a timer left running would
// fail it. Resume undoes Hand (queued datagrams first, then the watchdog
// for what is left of its period); the file is the caller's.
func (n *NotifySocket) Hand() (NotifyHandover, *os.File, error) {
	n.mu.Lock()
	if n.closed || n.conn == nil {
		n.mu.Unlock()
		return NotifyHandover{}, nil, errors.New("ready: notify socket closed")
	}
	if n.pause != nil {
		n.mu.Unlock()
		return NotifyHandover{}, nil, errors.New("ready: notify socket handed already")
	}
	pr := &readPause{held: make(chan struct{}), resume: make(chan struct{})}
	n.pause = pr
	conn := n.conn
	n.mu.Unlock()
	if err := conn.SetReadDeadline(time.Unix(1, 0)); err != nil {
		n.Resume()
		return NotifyHandover{}, nil, fmt.Errorf("ready: notify socket: %w", err)
	}
	select {
	case <-pr.held:
	case <-n.readDone:
	}
	n.deliverMu.Lock() // a delivery in flight (SetPID's queue, the watchdog's) ends first
	n.mu.Lock()
	h := NotifyHandover{Addr: n.addr, Path: n.path, PID: n.pid, State: n.st, WatchdogDue: n.wdDue}
	if n.wd != nil {
		// A firing timer waiting for deliverMu sees the generation move on.
		n.wd.Stop()
		n.wd = nil
		n.wdGen++
		pr.wdDue, pr.wdGen = n.wdDue, n.wdGen
	}
	n.mu.Unlock()
	n.deliverMu.Unlock()
	f, err := conn.File()
	if err != nil {
		n.Resume()
		return NotifyHandover{}, nil, fmt.Errorf("ready: notify socket: %w", err)
	}
	return h, f, nil
}

// Resume undoes Hand: what was sent meanwhile is handled, the watchdog
// Hand stopped runs again for what is left of its period (fires at once if
// that has passed and no WATCHDOG=1 was queued), and the socket is read
// again.
func (n *NotifySocket) Resume() {
	n.mu.Lock()
	pr, conn := n.pause, n.conn
	n.mu.Unlock()
	if pr == nil {
		return
	}
	conn.SetReadDeadline(time.Time{})
	n.deliverMu.Lock()
	n.mu.Lock()
	if n.pause != pr {
		n.mu.Unlock()
		n.deliverMu.Unlock()
		return // Close released it
	}
	n.mu.Unlock()
	// As AdoptNotify does: queued datagrams before the timer, so a ping
	// sent in time counts however long the hand-over lasted.
	select {
	case <-pr.held: // the reader waits in hold: nothing else reads conn
		for _, d := range readQueued(conn, n) {
			n.receive(d)
		}
	default: // Hand failed before the reader was held
	}
	n.mu.Lock()
	if n.pause == pr {
		n.pause = nil
		if !pr.wdDue.IsZero() && n.wdGen == pr.wdGen { // no ping or trigger read
			n.armWatchdogInLocked(time.Until(pr.wdDue))
		}
	} else {
		pr = nil // Close released it meanwhile
	}
	n.mu.Unlock()
	n.deliverMu.Unlock()
	if pr != nil {
		close(pr.resume)
	}
}

// AdoptNotify listens again on a notify socket a previous circled handed
// over (Hand; fd is its descriptor, inherited across exec): the same
// address, nothing bound or removed. The process's pid, reported state
// and watchdog come from h: a watchdog due at h.WatchdogDue fires then
// (at once if that has passed), unless a WATCHDOG=1 comes first. opts
// gives OnEvent; its Dir, Name, Abstract, UID, GID and Watchdog are not
// used. Close removes h.Path as for a socket of ListenNotify.
func AdoptNotify(fd int, h NotifyHandover, opts NotifyOptions) (*NotifySocket, error) {
	if fd < 0 {
		return nil, fmt.Errorf("ready: notify socket %s: no descriptor", h.Addr)
	}
	f := os.NewFile(uintptr(fd), "notify-socket")
	c, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("ready: notify socket %s (fd %d): %w", h.Addr, fd, err)
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("ready: notify socket %s (fd %d): not a unix socket", h.Addr, fd)
	}
	if err := enableCreds(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ready: notify socket %s: %w", h.Addr, err)
	}
	n := newNotifySocket(h.Addr, h.Path, opts)
	n.mu.Lock()
	n.st = h.State
	n.st.Watchdog = max(n.st.Watchdog, 0)
	n.pid = h.PID
	if n.st.Ready || n.st.Reloading {
		n.readyOnce.Do(func() { close(n.ready) })
	}
	gen := n.wdGen
	n.mu.Unlock()
	// What the process sent while the socket was handed over is handled
	// before the handed-over watchdog is armed: a WATCHDOG=1 sent in time
	// counts even when the upgrade outlasted what was left of the period
	// (an overdue timer and the reader would otherwise race).
	n.deliverMu.Lock()
	for _, d := range readQueued(conn, n) {
		n.receive(d)
	}
	n.deliverMu.Unlock()
	n.mu.Lock()
	if !h.WatchdogDue.IsZero() && n.wdGen == gen { // no ping or trigger read
		n.armWatchdogInLocked(time.Until(h.WatchdogDue))
	}
	n.mu.Unlock()
	n.start(conn)
	return n, nil
}

// readQueued reads, without waiting, the datagrams queued in conn (its
// descriptor is non-blocking: net.FilePacketConn made it so).
func readQueued(conn *net.UnixConn, n *NotifySocket) []datagram {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil
	}
	var out []datagram
	buf := make([]byte, maxDatagram+1)
	oob := make([]byte, oobSize)
	for {
		var nb, noob int
		var rerr error
		if err := rc.Control(func(fd uintptr) {
			for {
				nb, noob, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
				if rerr != unix.EINTR {
					return
				}
			}
		}); err != nil || rerr != nil {
			return out // EAGAIN: nothing more
		}
		if d, ok := n.datagram(buf[:nb], oob[:noob]); ok {
			out = append(out, d)
		}
	}
}
