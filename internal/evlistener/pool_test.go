package evlistener

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a listener played by the test: it reads what the pool writes to
// the listener's stdin and writes its stdout through the pool's sink, as
// the watcher's pump does.
type fake struct {
	t   *testing.T
	in  *os.File
	r   *bufio.Reader
	out io.WriteCloser
}

func newFake(t *testing.T, p *Pool, wid, pid int) *fake {
	t.Helper()
	in, err := p.Stdin(wid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return &fake{t: t, in: in, r: bufio.NewReader(in), out: p.Stdout(nil).Open(wid, pid)}
}

func (f *fake) say(s string) {
	f.t.Helper()
	if _, err := f.out.Write([]byte(s)); err != nil {
		f.t.Fatal(err)
	}
}

// event reads one envelope: its header fields and payload.
func (f *fake) event() (map[string]string, string) {
	f.t.Helper()
	f.in.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := f.r.ReadString('\n')
	if err != nil {
		f.t.Fatalf("reading a header: %v (got %q)", err, line)
	}
	h := map[string]string{}
	for _, kv := range strings.Fields(line) {
		k, v, _ := strings.Cut(kv, ":")
		h[k] = v
	}
	n, _ := strconv.Atoi(h["len"])
	var b strings.Builder
	for range n { // len counts characters
		r, _, err := f.r.ReadRune()
		if err != nil {
			f.t.Fatalf("reading a payload of %d characters: %v", n, err)
		}
		b.WriteRune(r)
	}
	return h, b.String()
}

// nothing asserts that no envelope is waiting.
func (f *fake) nothing() {
	f.t.Helper()
	f.in.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if b, err := f.r.Peek(1); err == nil {
		f.t.Fatalf("unexpected input %q", b)
	}
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func newPool(t *testing.T, b *Bus, name string, size int, events ...string) (*Pool, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	p, err := b.AddPool(PoolConfig{Name: name, Events: events, BufferSize: size,
		Log: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pool %s log:\n%s", name, lb)
		}
	})
	return p, lb
}

func exited(name string, pid int) Event {
	return StateChange{Process: name, Group: name, From: StateRunning, To: StateExited, PID: pid}.Event()
}

func TestProtocol(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, _ := newPool(t, b, "crash", 10, "PROCESS_STATE")
	f := newFake(t, p, 1, 100)
	if s := p.ListenerState(1); s != Acknowledged {
		t.Fatalf("new listener is %s, want ACKNOWLEDGED", s)
	}
	b.Publish(exited("web", 41))
	b.Publish(Tick(5, time.Now())) // not subscribed
	f.nothing()                    // not READY yet
	if p.Buffered() != 1 {
		t.Fatalf("buffered %d, want 1", p.Buffered())
	}
	f.say("READY\n")
	h, payload := f.event()
	want := map[string]string{"ver": "3.0", "server": "supervisor", "serial": "0", "pool": "crash",
		"poolserial": "0", "eventname": "PROCESS_STATE_EXITED", "len": strconv.Itoa(len(payload))}
	if fmt.Sprint(h) != fmt.Sprint(want) || payload != "processname:web groupname:web from_state:RUNNING expected:0 pid:41" {
		t.Fatalf("got %v %q, want %v", h, payload, want)
	}
	if s := p.ListenerState(1); s != Busy {
		t.Fatalf("after an event: %s, want BUSY", s)
	}
	// The result may arrive in pieces.
	for _, c := range "RESULT 2\nOK" {
		f.say(string(c))
	}
	if s := p.ListenerState(1); s != Acknowledged {
		t.Fatalf("after OK: %s, want ACKNOWLEDGED", s)
	}
	b.Publish(exited("web", 42))
	f.nothing()
	f.say("READY\n")
	h, _ = f.event()
	if h["serial"] != "1" || h["poolserial"] != "1" {
		t.Fatalf("second event %v: want serial 1 poolserial 1", h)
	}
	// FAIL: the same event again, same serials, to the next READY.
	f.say("RESULT 4\nFAIL")
	f.say("READY\n")
	h2, _ := f.event()
	if h2["serial"] != "1" || h2["poolserial"] != "1" {
		t.Fatalf("after FAIL got %v, want serial 1 again", h2)
	}
	// Anything but exactly OK rejects (supervisord's default_handler).
	f.say("RESULT 3\nok!READY\n")
	h3, _ := f.event()
	if h3["serial"] != "1" {
		t.Fatalf("after a non-OK result got %v, want serial 1 again", h3)
	}
	f.say("RESULT 2\nOKREADY\n")
	f.nothing()
	if s := p.ListenerState(1); s != Ready {
		t.Fatalf("state %s, want READY", s)
	}
}

func TestPayloadLenCountsCharacters(t *testing.T) {
	b := NewBus("myhost")
	defer b.Close()
	p, _ := newPool(t, b, "logs", 10, "PROCESS_LOG")
	f := newFake(t, p, 1, 100)
	f.say("READY\n")
	b.Publish(ProcessLog("web", "web", 9, "stdout", []byte("héllo wörld\n")))
	h, payload := f.event()
	if h["server"] != "myhost" || h["len"] != "63" || payload != "processname:web groupname:web pid:9 channel:stdout\nhéllo wörld\n" {
		t.Fatalf("got %v %q", h, payload)
	}
}

func TestProtocolErrors(t *testing.T) {
	for _, c := range []struct {
		name, say string
		busy      bool // say it after receiving an event
	}{
		{"not READY first", "hello world\n", false},
		{"output while READY", "READY\nextra", false},
		{"bad result line", "RESULT x\nOK", true},
		{"negative result", "RESULT -1\n", true},
		{"endless result line", "RESULT " + strings.Repeat("1", maxResultLine+10), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := NewBus("")
			defer b.Close()
			p, lb := newPool(t, b, "x", 10, "PROCESS_STATE")
			f := newFake(t, p, 1, 100)
			b.Publish(exited("web", 1))
			if c.busy {
				f.say("READY\n")
				f.event()
			}
			f.say(c.say)
			if s := p.ListenerState(1); s != Unknown {
				t.Fatalf("state %s, want UNKNOWN", s)
			}
			if !strings.Contains(lb.String(), "violated the eventlistener protocol") {
				t.Errorf("no warning logged:\n%s", lb)
			}
			if p.Buffered() != 1 {
				t.Errorf("buffered %d: the event should wait for another listener", p.Buffered())
			}
			f.say("READY\n") // too late: UNKNOWN until restarted
			f.nothing()
			g := newFake(t, p, 1, 101) // the restart
			g.say("READY\n")
			if h, _ := g.event(); h["serial"] != "0" {
				t.Fatalf("restarted listener got %v, want serial 0", h)
			}
		})
	}
}

func TestOverflowDropsOldest(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, lb := newPool(t, b, "small", 3, "PROCESS_STATE_EXITED")
	for i := range 5 {
		b.Publish(exited("web", 100+i))
	}
	if p.Buffered() != 3 || p.Dropped() != 2 {
		t.Fatalf("buffered %d dropped %d, want 3 and 2", p.Buffered(), p.Dropped())
	}
	if n := strings.Count(lb.String(), "event buffer overflowed"); n != 2 {
		t.Errorf("%d overflow lines logged, want 2:\n%s", n, lb)
	}
	f := newFake(t, p, 1, 100)
	for want := 2; want < 5; want++ {
		f.say("READY\n")
		h, payload := f.event()
		if h["serial"] != strconv.Itoa(want) || !strings.HasSuffix(payload, "pid:"+strconv.Itoa(100+want)) {
			t.Fatalf("got %v %q, want serial %d", h, payload, want)
		}
		f.say("RESULT 2\nOK")
	}
	// A rejected event goes back to the head, and a full buffer drops its
	// oldest to make room, as supervisord does.
	f.say("READY\n")
	b.Publish(exited("web", 200))
	h, _ := f.event()
	for range 3 {
		b.Publish(exited("web", 300))
	}
	f.say("RESULT 4\nFAIL")
	if p.Buffered() != 3 || p.Dropped() != 3 {
		t.Fatalf("buffered %d dropped %d, want 3 and 3", p.Buffered(), p.Dropped())
	}
	f.say("READY\n")
	if h2, _ := f.event(); h2["serial"] != h["serial"] {
		t.Fatalf("after FAIL with a full buffer got %v, want %v first", h2, h)
	}
}

// Pools share global serials; each has its own poolserial, and an
// event no pool takes uses no serial.
func TestSerials(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	pa, _ := newPool(t, b, "a", 10, "PROCESS_STATE")
	// b's own event is not a TICK_5: b's subscription would start the
	// bus's real ticker, whose TICK_5 at a wall-clock multiple of 5 s
	// took a serial in about one run in fifty.
	pb, _ := newPool(t, b, "b", 10, "PROCESS_GROUP_ADDED", "PROCESS_STATE_EXITED")
	fa, fb := newFake(t, pa, 1, 1), newFake(t, pb, 1, 2)
	b.Publish(RemoteCommunication("x", "y")) // nobody: no serial
	b.Publish(exited("w", 1))                // a and b: serial 0
	b.Publish(ProcessGroupAdded("g"))        // b: serial 1
	b.Publish(StateChange{Process: "w", Group: "w", From: StateExited, To: StateStarting}.Event())
	pb.Publish(exited("w", 2)) // b only: serial 3
	// n envelopes, each awaited as long as event allows (a loaded
	// machine can take more than any short deadline to send one), then
	// nothing more.
	got := func(f *fake, n int) (s []string) {
		for range n {
			f.say("READY\n")
			h, _ := f.event()
			s = append(s, h["serial"]+"/"+h["poolserial"]+"/"+h["eventname"])
			f.say("RESULT 2\nOK")
		}
		f.say("READY\n")
		f.nothing()
		return s
	}
	if s := fmt.Sprint(got(fa, 2)); s != "[0/0/PROCESS_STATE_EXITED 2/1/PROCESS_STATE_STARTING]" {
		t.Errorf("pool a got %s", s)
	}
	if s := fmt.Sprint(got(fb, 3)); s != "[0/0/PROCESS_STATE_EXITED 1/1/PROCESS_GROUP_ADDED 3/2/PROCESS_STATE_EXITED]" {
		t.Errorf("pool b got %s", s)
	}
}

// An event in flight to a listener that ends (stdout EOF, Exited, a new
// Stdin for its slot) goes to the next listener.
func TestInflightRequeued(t *testing.T) {
	for _, how := range []string{"stdout EOF", "Exited", "restart"} {
		t.Run(how, func(t *testing.T) {
			b := NewBus("")
			defer b.Close()
			p, lb := newPool(t, b, "x", 10, "PROCESS_STATE")
			f1 := newFake(t, p, 1, 100)
			f2 := newFake(t, p, 2, 200)
			f1.say("READY\n")
			f2.say("READY\n")
			b.Publish(exited("web", 7))
			h, _ := f1.event() // lowest wid first
			f2.nothing()
			switch how {
			case "stdout EOF":
				f1.out.Close()
			case "Exited":
				p.Exited(1, 999) // another pid: not this listener
				f2.nothing()
				p.Exited(1, 100)
			case "restart":
				f1 = newFake(t, p, 1, 101)
			}
			h2, _ := f2.event()
			if h2["serial"] != h["serial"] {
				t.Fatalf("wid 2 got %v, want %v", h2, h)
			}
			if !strings.Contains(lb.String(), "event buffered again") {
				t.Errorf("no log line:\n%s", lb)
			}
			if how != "restart" && p.ListenerState(1) != "" {
				t.Errorf("ended listener still has state %q", p.ListenerState(1))
			}
			// Its stdin was closed: a listener reading it sees EOF.
			if how != "restart" {
				f1.in.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := f1.r.ReadByte(); err != io.EOF {
					t.Errorf("old stdin: %v, want EOF", err)
				}
			}
		})
	}
}

func TestPoolConfigErrors(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	for _, cfg := range []PoolConfig{
		{Name: "", Events: []string{"EVENT"}},
		{Name: "x"},
		{Name: "x", Events: []string{"TICK_1"}},
		{Name: "x", Events: []string{"EVENT"}, BufferSize: -1},
	} {
		if _, err := b.AddPool(cfg); err == nil {
			t.Errorf("AddPool(%+v): no error", cfg)
		}
	}
	if _, err := b.AddPool(PoolConfig{Name: "x", Events: []string{"EVENT"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddPool(PoolConfig{Name: "x", Events: []string{"EVENT"}}); err == nil {
		t.Error("duplicate pool name: no error")
	}
}

// Stdout's tee gets every byte the listener writes (its stdout_logfile).
func TestStdoutTee(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, _ := newPool(t, b, "x", 10, "EVENT")
	in, err := p.Stdin(1)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tee := &teeSink{}
	w := p.Stdout(tee).Open(1, 5)
	w.Write([]byte("READY\n"))
	w.Close()
	if tee.String() != "READY\n" || !tee.closed || tee.wid != 1 || tee.pid != 5 {
		t.Errorf("tee got %q closed=%v wid=%d pid=%d", tee.String(), tee.closed, tee.wid, tee.pid)
	}
}

type teeSink struct {
	logBuf
	wid, pid int
	closed   bool
}

func (s *teeSink) Open(wid, pid int) io.WriteCloser {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wid, s.pid = wid, pid
	return s
}

func (s *teeSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// A listener that never reads its input does not keep the pool's writer
// stuck once it ends.
func TestBlockedWriterEnds(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, _ := newPool(t, b, "x", 10, "PROCESS_LOG")
	f := newFake(t, p, 1, 100)
	f.say("READY\n")
	b.Publish(ProcessLog("web", "web", 1, "stdout", bytes.Repeat([]byte("x"), 1<<20))) // more than a pipe holds
	p.mu.Lock()
	l := p.ls[1]
	p.mu.Unlock()
	select {
	case <-l.written:
		t.Fatal("the writer ended while the listener was alive")
	case <-time.After(50 * time.Millisecond):
	}
	p.Exited(1, 100)
	select {
	case <-l.written:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer is still blocked after the listener ended")
	}
	if p.Buffered() != 1 {
		t.Errorf("buffered %d, want the event back", p.Buffered())
	}
}
