package ready

import (
	"sync"
	"time"
)

// Live upgrade (issue 19): a NotifySocket's descriptor is handed to the
// next circled (Hand, then exec keeps it), which listens on it again
// (AdoptNotify). The socket is never closed or bound again, so its path
// (or abstract address), which the child holds in NOTIFY_SOCKET, stays
// valid; datagrams sent meanwhile wait in it.

// NotifyHandover is what a live upgrade carries of a NotifySocket.
type NotifyHandover struct {
	Addr        string      // NOTIFY_SOCKET's value
	Path        string      `json:",omitempty"` // the socket file, removed at Close ("" for abstract)
	PID         int         // the process's pid (SetPID)
	State       NotifyState // what it reported
	WatchdogDue time.Time   `json:",omitzero"` // when the watchdog fires (zero: not armed)
}

// readPause holds the reading goroutine between two datagrams (Hand).
type readPause struct {
	once   sync.Once
	held   chan struct{} // closed once the reader is held
	resume chan struct{} // closed by Resume or Close
	wdDue  time.Time     // the watchdog Hand stopped was due then (zero: none)
	wdGen  int           // n.wdGen after the stop: a ping since re-armed it
}

// hold is called by the reader when a read ended at its deadline: while
// the socket is handed, it waits for Resume or Close.
func (n *NotifySocket) hold() {
	n.mu.Lock()
	pr := n.pause
	n.mu.Unlock()
	if pr == nil {
		return
	}
	pr.once.Do(func() { close(pr.held) })
	<-pr.resume
}
