//go:build unix

package ready

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/sdnotify"
	"golang.org/x/sys/unix"
)

// TestNotifyHandResumeAdopt: Hand holds the reader (a datagram sent
// meanwhile is delivered after Resume, nothing lost), and a socket
// adopted from the handed descriptor reads what is sent to the same
// address, keeps the state and fires a watchdog already due at once.
func TestNotifyHandResumeAdopt(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		if abstract && !abstractSupported {
			continue
		}
		name := map[bool]string{false: "path", true: "abstract"}[abstract]
		t.Run(name, func(t *testing.T) {
			events := make(eventLog, 64)
			n, err := ListenNotify(NotifyOptions{Dir: sockDir(t), Abstract: abstract, UID: -1, GID: -1, Watchdog: time.Hour,
				OnEvent: func(e Event) { events <- e }})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			n.SetPID(os.Getpid()) // the test sends itself
			c := sdnotify.New(n.Addr())
			if ok, err := c.Status("one"); !ok || err != nil {
				t.Fatal(ok, err)
			}
			if e := events.until(t, EventStatus); e.Text != "one" {
				t.Fatalf("status %q", e.Text)
			}

			// A hand-over that does not happen.
			h, f, err := n.Hand()
			if err != nil {
				t.Fatal(err)
			}
			if h.Addr != n.Addr() || h.PID != os.Getpid() || h.State.Status != "one" || h.State.Watchdog != time.Hour {
				t.Fatalf("handover %+v", h)
			}
			if d := time.Until(h.WatchdogDue); d <= 0 || d > time.Hour {
				t.Fatalf("watchdog due in %v, want within the hour", d)
			}
			if _, _, err := n.Hand(); err == nil {
				t.Fatal("handed twice")
			}
			if ok, err := c.Status("two"); !ok || err != nil {
				t.Fatal(ok, err)
			}
			n.Resume()
			f.Close()
			if e := events.until(t, EventStatus); e.Text != "two" {
				t.Fatalf("status %q after Resume, want the one sent while handed", e.Text)
			}

			// The hand-over: the adopted socket reads the address; the
			// old one (held) does not.
			h, f, err = n.Hand()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if ok, err := c.Status("three"); !ok || err != nil {
				t.Fatal(ok, err)
			}
			fd, err := unix.Dup(fileFD(t, f))
			if err != nil {
				t.Fatal(err)
			}
			h.WatchdogDue = time.Now().Add(-time.Second) // due during the upgrade
			adopted := make(eventLog, 64)
			m, err := AdoptNotify(fd, h, NotifyOptions{OnEvent: func(e Event) { adopted <- e }})
			if err != nil {
				t.Fatal(err)
			}
			// Its state is the handed one ("three" may be read already).
			if st := m.State(); st.Status != "two" && st.Status != "three" || st.Watchdog != time.Hour {
				t.Fatalf("adopted state %+v", st)
			}
			if m.Addr() != n.Addr() {
				t.Fatalf("adopted address %q, want %q", m.Addr(), n.Addr())
			}
			// Both, in either order: the watchdog's timer and the reader
			// run apart.
			var fired, three bool
			for timeout := time.After(wait); !fired || !three; {
				select {
				case e := <-adopted:
					switch {
					case e.Kind == EventWatchdogTimeout:
						fired = true
					case e.Kind == EventStatus && e.Text == "three":
						three = true
					case e.Kind == EventStatus:
						t.Fatalf("adopted status %q, want three (sent while handed)", e.Text)
					}
				case <-timeout:
					t.Fatalf("adopted socket: watchdog fired %v, status three %v", fired, three)
				}
			}
			// A ping re-arms the watchdog with the whole period.
			if _, err := c.Notify("WATCHDOG=1"); err != nil {
				t.Fatal(err)
			}
			adopted.until(t, EventWatchdog)
			select {
			case e := <-events:
				t.Fatalf("the held socket delivered %+v", e)
			default:
			}
			m.Close()
			if !abstract {
				if _, err := os.Stat(h.Addr); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("socket file after the adopted socket's Close: %v", err)
				}
			}
		})
	}
}

// TestAdoptNotifyBadFD: a descriptor that is not a socket is refused.
func TestAdoptNotifyBadFD(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.Dup(fileFD(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AdoptNotify(fd, NotifyHandover{Addr: "/nowhere"}, NotifyOptions{}); err == nil {
		t.Fatal("a regular file adopted as a notify socket")
	}
	if _, err := AdoptNotify(-1, NotifyHandover{}, NotifyOptions{}); err == nil {
		t.Fatal("fd -1 adopted")
	}
}

func fileFD(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	rc.Control(func(u uintptr) { fd = int(u) })
	return fd
}

// TestProberResumed: a prober resumed with a deadline already passed
// fails at once (its Timeout, an hour, is not restarted); one whose log
// check had matched is ready without a line.
func TestProberResumed(t *testing.T) {
	due := time.Now().Add(-time.Second)
	p, ch := probe(t, Options{Checks: []Check{TCP(freeAddr(t))}, Timeout: time.Hour, Interval: time.Hour, Deadline: due})
	if !p.Deadline().Equal(due) {
		t.Fatalf("Deadline %v, want %v", p.Deadline(), due)
	}
	if r := result(t, p, ch); r.Ready || !errors.Is(r.Err, ErrTimeout) {
		t.Fatalf("got %+v, want a timeout", r)
	}

	lc, err := Log(`^listening$`)
	if err != nil {
		t.Fatal(err)
	}
	p, ch = probe(t, Options{Checks: []Check{lc}, Timeout: time.Hour, LogMatched: true})
	if r := result(t, p, ch); !r.Ready {
		t.Fatalf("log matched before: %s", r.Reason())
	}
	p, ch = probe(t, Options{Checks: []Check{lc}, Timeout: time.Hour})
	if p.LogMatched() {
		t.Fatal("LogMatched before any line")
	}
	p.FeedLine([]byte("listening\n"))
	if r := result(t, p, ch); !r.Ready || !p.LogMatched() {
		t.Fatalf("after the line: %+v, LogMatched %v", r, p.LogMatched())
	}
}

// TestHealthResumed: a runner resumed with one failure already counted
// and its round due now reports unhealthy after one more failed round
// (Interval, an hour, is not waited first), and its Snapshot says so.
func TestHealthResumed(t *testing.T) {
	reports := make(chan HealthReport, 4)
	h, err := StartHealth(HealthOptions{Checks: []Check{TCP(freeAddr(t))}, Interval: time.Hour, Timeout: 5 * time.Second, Retries: 2,
		Resume: HealthResume{State: HealthHealthy, Failures: 1, Next: time.Now()}}, func(r HealthReport) { reports <- r })
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	select {
	case r := <-reports:
		if r.State != HealthUnhealthy || r.Failures != 2 {
			t.Fatalf("report %+v, want unhealthy after 2 failures", r)
		}
	case <-time.After(wait):
		t.Fatal("no report")
	}
	s := h.Snapshot()
	if s.State != HealthUnhealthy || s.Failures != 2 || time.Until(s.Next) < 50*time.Minute {
		t.Fatalf("snapshot %+v, want unhealthy, 2 failures, next round in about an hour", s)
	}
}

// TestAdoptNotifyQueuedPing: a WATCHDOG=1 the process sent while the
// socket was handed over counts, even when the upgrade outlasted what
// was left of the period (the handed due time has passed): the adopted
// socket reads it before it arms that due time, so the watchdog does
// not fire.
func TestAdoptNotifyQueuedPing(t *testing.T) {
	for range 20 { // without the fix, the timer and the reader raced
		events := make(eventLog, 64)
		n, err := ListenNotify(NotifyOptions{Dir: sockDir(t), UID: -1, GID: -1, Watchdog: time.Hour,
			OnEvent: func(e Event) { events <- e }})
		if err != nil {
			t.Fatal(err)
		}
		n.SetPID(os.Getpid())
		h, f, err := n.Hand()
		if err != nil {
			t.Fatal(err)
		}
		c := sdnotify.New(n.Addr())
		if _, err := c.Notify("WATCHDOG=1"); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Dup(fileFD(t, f))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		h.WatchdogDue = time.Now().Add(-time.Second) // passed during the upgrade
		adopted := make(eventLog, 64)
		m, err := AdoptNotify(fd, h, NotifyOptions{OnEvent: func(e Event) { adopted <- e }})
		if err != nil {
			t.Fatal(err)
		}
		// Events are delivered in order (deliverMu): a timeout of the
		// handed due time would come before or instead of the ping.
		adopted.pingBeforeTimeout(t)
		due := m.watchdogDue()
		if d := time.Until(due); d < 30*time.Minute {
			t.Fatalf("watchdog due in %v after the queued ping, want the whole period", d)
		}
		m.Close()
		n.Close()
	}
}

// TestHandStopsWatchdogResumeRearms: while a socket is handed (a live
// upgrade's freeze), its watchdog does not fire: a ping the process sends
// in time waits in the socket. An upgrade that is then aborted (Resume)
// handles the queued ping first and re-arms the whole period; without a
// ping, a due time that passed during the hand-over fires at Resume.
func TestHandStopsWatchdogResumeRearms(t *testing.T) {
	const period = 200 * time.Millisecond
	for _, ping := range []bool{true, false} {
		t.Run(map[bool]string{true: "queued-ping", false: "no-ping"}[ping], func(t *testing.T) {
			events := make(eventLog, 64)
			n, err := ListenNotify(NotifyOptions{Dir: sockDir(t), UID: -1, GID: -1, Watchdog: period,
				OnEvent: func(e Event) { events <- e }})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			n.SetPID(os.Getpid())
			h, f, err := n.Hand()
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			if h.WatchdogDue.IsZero() {
				t.Fatal("the watchdog was not armed at Hand")
			}
			if ping {
				if _, err := sdnotify.New(n.Addr()).Notify("WATCHDOG=1"); err != nil {
					t.Fatal(err)
				}
			}
			// The stimulus is time passing: the hand-over outlasts the period.
			for time.Now().Before(h.WatchdogDue.Add(3 * period)) {
				time.Sleep(period / 4)
			}
			select {
			case e := <-events:
				t.Fatalf("event while handed: %+v", e)
			default:
			}
			n.Resume()
			if !ping {
				events.until(t, EventWatchdogTimeout)
				return
			}
			events.pingBeforeTimeout(t)
			due := n.watchdogDue()
			if due.Before(h.WatchdogDue.Add(3 * period)) {
				t.Fatalf("watchdog due %v after Resume, want a whole period after the queued ping was handled", due)
			}
		})
	}
}

// pingBeforeTimeout waits for the queued WATCHDOG=1's event and fails if
// a watchdog timeout comes first (or none comes).
func (l eventLog) pingBeforeTimeout(t *testing.T) {
	t.Helper()
	for timeout := time.After(wait); ; {
		select {
		case e := <-l:
			switch e.Kind {
			case EventWatchdogTimeout:
				t.Fatalf("the watchdog fired although a ping was queued: %+v", e)
			case EventWatchdog:
				return
			}
		case <-timeout:
			t.Fatal("the queued WATCHDOG=1 was not handled")
		}
	}
}

// watchdogDue is when n's watchdog fires (zero: not armed).
func (n *NotifySocket) watchdogDue() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.wdDue
}
