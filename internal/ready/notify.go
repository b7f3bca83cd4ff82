package ready

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NotifyOptions configure a per-process NOTIFY_SOCKET.
type NotifyOptions struct {
	// Dir is a directory only circled's user can write (and the child's
	// user can search): the socket is Dir/Name. Required unless Abstract.
	Dir string
	// Name of the socket file, or part of the abstract name; "" picks a
	// unique one. Keep Dir/Name under 104 bytes.
	Name string
	// Abstract (Linux only) uses an abstract socket ("@circle/...") instead
	// of a file. Anyone in the network namespace can send to it, so the
	// sender check (SCM_CREDENTIALS) matters more.
	Abstract bool
	// UID and GID of the child, when it runs as another user: the socket
	// file (mode 0600) is chowned to them when circled runs as root and UID
	// is > 0; GID -1 keeps the group.
	UID, GID int
	// Watchdog is the watchdog period (the watchdog key): after SetPID,
	// no WATCHDOG=1 within it gives one EventWatchdogTimeout. 0: none,
	// unless the process sends WATCHDOG_USEC=.
	Watchdog time.Duration
	// OnEvent is called for each accepted message and for a watchdog
	// timeout, one at a time, from the socket's goroutine or the watchdog
	// timer's. It may take the caller's locks; it must not call Close.
	OnEvent func(Event)
}

// EventKind is the kind of an Event.
type EventKind int

// Events of a NotifySocket.
const (
	EventReady           EventKind = iota + 1 // READY=1 (startup, or a reload, finished)
	EventReloading                            // RELOADING=1
	EventStopping                             // STOPPING=1
	EventStatus                               // STATUS=Text
	EventWatchdog                             // WATCHDOG=1: a ping
	EventWatchdogTimeout                      // no ping within the period, or WATCHDOG=trigger: a failure
	EventWatchdogPeriod                       // WATCHDOG_USEC=: Duration is the new period (0: off)
	EventMainPID                              // MAINPID=PID, accepted (the pid belongs to the process)
	EventExtendTimeout                        // EXTEND_TIMEOUT_USEC=: Duration more from now
	EventRejected                             // a datagram from a process outside the tree; PID is the sender
)

var eventNames = [...]string{"", "ready", "reloading", "stopping", "status", "watchdog",
	"watchdog-timeout", "watchdog-period", "mainpid", "extend-timeout", "rejected"}

func (k EventKind) String() string {
	if k > 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event is one thing a NotifySocket saw.
type Event struct {
	Kind     EventKind
	Text     string        // EventStatus: the text; EventWatchdogTimeout: why
	PID      int           // EventMainPID: the new main pid; EventRejected: the sender; else the sender when known
	Duration time.Duration // EventWatchdogPeriod, EventExtendTimeout
}

// NotifyState is a snapshot of what the process reported.
type NotifyState struct {
	Ready     bool // READY=1 seen (and no RELOADING=1 since)
	Reloading bool
	Stopping  bool
	Status    string // the last STATUS=
	MainPID   int    // the last accepted MAINPID=, else 0
	LastPing  time.Time
	Watchdog  time.Duration // current watchdog period
	Rejected  int           // datagrams refused (sender outside the process tree, too long, bad)
}

// ErrNotSupported: no notify socket on this system (Windows).
var ErrNotSupported = errors.New("ready: notify sockets are not supported on this system")

// NotifySocket is a per-process NOTIFY_SOCKET server. Create it with
// ListenNotify before the process starts, put Env in its environment, call
// SetPID once it started, and Close when it has exited.
type NotifySocket struct {
	addr    string
	path    string // file to remove at Close, "" for abstract
	onEvent func(Event)

	readyOnce sync.Once
	ready     chan struct{}      // closed at the first READY=1
	extend    chan time.Duration // latest EXTEND_TIMEOUT_USEC, for a Prober

	mu       sync.Mutex
	st       NotifyState
	pid      int
	closed   bool
	wd       *time.Timer
	wdGen    int       // invalidates a firing watchdog timer after a reset
	wdDue    time.Time // when wd fires (zero: not armed)
	conn     *net.UnixConn
	pause    *readPause // a live upgrade holds the reader (Hand)
	pending  []datagram
	closeFn  func()
	readDone chan struct{}

	deliverMu sync.Mutex // one event at a time, in order
}

// datagram is a received message waiting for SetPID.
type datagram struct {
	data     []byte
	pid, uid int
	creds    bool
}

func newNotifySocket(addr, path string, opts NotifyOptions) *NotifySocket {
	return &NotifySocket{
		addr:     addr,
		path:     path,
		onEvent:  opts.OnEvent,
		ready:    make(chan struct{}),
		extend:   make(chan time.Duration, 1),
		st:       NotifyState{Watchdog: max(opts.Watchdog, 0)},
		readDone: make(chan struct{}),
	}
}

// Addr is the NOTIFY_SOCKET value: a path, or "@name" for an abstract
// socket.
func (n *NotifySocket) Addr() string {
	if n == nil {
		return ""
	}
	return n.addr
}

// Env returns the environment entries to append to the child's
// environment (exec.Cmd keeps the last of duplicate keys):
// NOTIFY_SOCKET, and with a watchdog WATCHDOG_USEC, plus WATCHDOG_PID when
// pid > 0. The pid is only known before exec when a trampoline sets it;
// without WATCHDOG_PID, sd_watchdog_enabled(3) accepts any process.
func (n *NotifySocket) Env(pid int) []string {
	if n == nil {
		return nil
	}
	env := []string{"NOTIFY_SOCKET=" + n.addr}
	n.mu.Lock()
	wd := n.st.Watchdog
	n.mu.Unlock()
	if wd > 0 {
		env = append(env, "WATCHDOG_USEC="+strconv.FormatInt(wd.Microseconds(), 10))
		if pid > 0 {
			env = append(env, "WATCHDOG_PID="+strconv.Itoa(pid))
		}
	}
	return env
}

// State is a snapshot of what the process reported.
func (n *NotifySocket) State() NotifyState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st
}

// Status is the last STATUS= text ("" if none).
func (n *NotifySocket) Status() string {
	if n == nil {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.Status
}

func (n *NotifySocket) readyChan() <-chan struct{}       { return n.ready }
func (n *NotifySocket) extendChan() <-chan time.Duration { return n.extend }

// SetPID records the process's pid once it started: senders are checked
// against it (on Linux) and the watchdog starts. Messages that arrived
// before are checked and delivered now, from another goroutine.
func (n *NotifySocket) SetPID(pid int) {
	n.mu.Lock()
	if n.closed || n.pid != 0 || pid <= 0 {
		n.mu.Unlock()
		return
	}
	n.pid = pid
	n.armWatchdogLocked()
	queued := len(n.pending) > 0
	n.mu.Unlock()
	if queued {
		go func() {
			n.deliverMu.Lock()
			defer n.deliverMu.Unlock()
			n.flushPendingLocked()
		}()
	}
}

// Close stops listening, the watchdog and any delivery, removes the socket
// file and waits for the reading goroutine. It must not be called from
// OnEvent.
func (n *NotifySocket) Close() error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		<-n.readDone
		return nil
	}
	n.closed = true
	if n.wd != nil {
		n.wd.Stop()
	}
	n.wdGen++
	n.wdDue = time.Time{}
	n.pending = nil
	closeFn := n.closeFn
	pr := n.pause
	n.pause = nil
	n.mu.Unlock()
	if pr != nil {
		close(pr.resume) // the reader, held, sees the socket closed
	}
	if closeFn != nil {
		closeFn()
	}
	<-n.readDone
	return nil
}

// armWatchdogLocked (re)starts the watchdog timer for the current period.
func (n *NotifySocket) armWatchdogLocked() {
	n.armWatchdogInLocked(n.st.Watchdog)
}

// armWatchdogInLocked (re)starts the watchdog timer to fire in d (the
// period, or what is left of it for an adopted socket).
func (n *NotifySocket) armWatchdogInLocked(d time.Duration) {
	n.wdGen++
	n.wdDue = time.Time{}
	if n.wd != nil {
		n.wd.Stop()
		n.wd = nil
	}
	if n.closed || n.pid == 0 || n.st.Watchdog <= 0 || n.st.Stopping {
		return
	}
	gen := n.wdGen
	period := n.st.Watchdog
	d = max(d, 0)
	n.wdDue = time.Now().Add(d)
	n.wd = time.AfterFunc(d, func() {
		n.deliverMu.Lock()
		defer n.deliverMu.Unlock()
		n.mu.Lock()
		live := !n.closed && gen == n.wdGen
		n.mu.Unlock()
		if live {
			n.emit(Event{Kind: EventWatchdogTimeout, Text: "no WATCHDOG=1 within " + period.String()})
		}
	})
}

func (n *NotifySocket) emit(e Event) {
	if n.onEvent != nil {
		n.onEvent(e)
	}
}

// receive handles one datagram; called with deliverMu held.
func (n *NotifySocket) receive(d datagram) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	if n.pid == 0 {
		if len(n.pending) < maxPending {
			n.pending = append(n.pending, d)
		} else {
			n.st.Rejected++
		}
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	n.flushPendingLocked()
	n.handle(d)
}

const maxPending = 32

// flushPendingLocked handles datagrams queued before SetPID; deliverMu held.
func (n *NotifySocket) flushPendingLocked() {
	n.mu.Lock()
	q := n.pending
	n.pending = nil
	n.mu.Unlock()
	for _, d := range q {
		n.handle(d)
	}
}

// handle checks the sender and applies the message; deliverMu held.
func (n *NotifySocket) handle(d datagram) {
	n.mu.Lock()
	root := n.pid
	n.mu.Unlock()
	if d.creds && !belongsTo(d.pid, d.uid, root) {
		n.mu.Lock()
		n.st.Rejected++
		n.mu.Unlock()
		n.emit(Event{Kind: EventRejected, PID: d.pid})
		return
	}
	var events []Event
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	for _, line := range strings.Split(string(d.data), "\n") {
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch key {
		case "READY":
			if val == "1" {
				n.st.Ready, n.st.Reloading = true, false
				n.readyOnce.Do(func() { close(n.ready) })
				events = append(events, Event{Kind: EventReady})
			}
		case "RELOADING":
			if val == "1" {
				n.st.Ready, n.st.Reloading = false, true
				events = append(events, Event{Kind: EventReloading})
			}
		case "STOPPING":
			if val == "1" {
				n.st.Stopping = true
				n.armWatchdogLocked() // stops it
				events = append(events, Event{Kind: EventStopping})
			}
		case "STATUS":
			n.st.Status = val
			events = append(events, Event{Kind: EventStatus, Text: val})
		case "WATCHDOG":
			switch val {
			case "1":
				n.st.LastPing = time.Now()
				n.armWatchdogLocked()
				events = append(events, Event{Kind: EventWatchdog})
			case "trigger":
				n.wdGen++
				n.wdDue = time.Time{}
				if n.wd != nil {
					n.wd.Stop()
				}
				events = append(events, Event{Kind: EventWatchdogTimeout, Text: "WATCHDOG=trigger"})
			}
		case "WATCHDOG_USEC":
			if usec, err := strconv.ParseUint(val, 10, 63); err == nil {
				n.st.Watchdog = time.Duration(min(usec, uint64(1<<62)/1000)) * time.Microsecond
				n.armWatchdogLocked()
				events = append(events, Event{Kind: EventWatchdogPeriod, Duration: n.st.Watchdog})
			}
		case "EXTEND_TIMEOUT_USEC":
			if usec, err := strconv.ParseUint(val, 10, 63); err == nil {
				dur := time.Duration(min(usec, uint64(1<<62)/1000)) * time.Microsecond
				select {
				case <-n.extend:
				default:
				}
				n.extend <- dur
				events = append(events, Event{Kind: EventExtendTimeout, Duration: dur})
			}
		case "MAINPID":
			pid, err := strconv.Atoi(val)
			// Not trusted blindly: the new main pid must be in the tree.
			n.mu.Unlock()
			okPid := err == nil && pid > 0 && belongsTo(pid, -1, root)
			n.mu.Lock()
			if okPid {
				n.st.MainPID = pid
				events = append(events, Event{Kind: EventMainPID, PID: pid})
			} else {
				n.st.Rejected++
			}
		}
	}
	n.mu.Unlock()
	for _, e := range events {
		if e.Kind != EventMainPID && e.PID == 0 && d.creds {
			e.PID = d.pid
		}
		n.emit(e)
	}
}
