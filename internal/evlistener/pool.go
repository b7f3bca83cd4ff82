package evlistener

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
)

// Sink makes the writer that receives one process's stream: the same
// method as watcher.Sink, so a Pool's Stdout is a watcher.Sink without
// this package importing the watcher.
type Sink interface {
	Open(wid, pid int) io.WriteCloser
}

// DefaultBufferSize is supervisord's buffer_size default.
const DefaultBufferSize = 10

// Bounds on what a listener may make circled hold.
const (
	maxResultLine = 4096     // a RESULT line without its newline
	maxResult     = 64 << 10 // the n of RESULT n
	maxUnwritten  = 8 << 20  // envelopes waiting for a listener's input
)

// The states of a listener (supervisord's EventListenerStates).
const (
	Acknowledged = "ACKNOWLEDGED" // started, or answered an event: READY is next
	Ready        = "READY"        // waiting for an event
	Busy         = "BUSY"         // has an event and owes a RESULT
	Unknown      = "UNKNOWN"      // broke the protocol: no more events until restarted
)

// PoolConfig is one [eventlistener:x] section's pool settings.
type PoolConfig struct {
	Name string
	// Events are the subscribed types (ParseEvents' result): concrete
	// names and abstract ones (PROCESS_STATE, TICK, EVENT, ...).
	Events []string
	// BufferSize is how many events wait for a free listener before the
	// oldest is dropped; 0 = DefaultBufferSize.
	BufferSize int
	// Log receives the pool's warnings (overflow, protocol errors,
	// rejected events) and debug lines; nil discards them.
	Log *slog.Logger
}

// Bus fans events out to its pools and makes TICK_* events while a pool
// wants them (no timer otherwise).
type Bus struct {
	server string

	mu     sync.Mutex
	pools  []*Pool
	serial int64 // the last global serial given; -1 before the first
	closed bool

	tickPeriods []int
	tickStop    chan struct{}
	tickDone    sync.WaitGroup // the tick loop
	tickLast    map[int]int64  // period -> the last boundary published
	frozen      bool           // a live upgrade holds the bus (handover.go)
	frozenPools []*Pool        // the pools Freeze froze
}

// NewBus makes a bus. server is the header's server field: supervisord's
// identifier (its default is "supervisor"; "" means that).
func NewBus(server string) *Bus {
	if server == "" {
		server = "supervisor"
	}
	return &Bus{server: server, serial: -1}
}

// AddPool makes the pool of one [eventlistener:x]. Names are unique.
func (b *Bus) AddPool(cfg PoolConfig) (*Pool, error) {
	if cfg.Name == "" {
		return nil, errors.New("event listener pool without a name")
	}
	if len(cfg.Events) == 0 {
		return nil, fmt.Errorf("eventlistener:%s: no event type subscribed", cfg.Name)
	}
	for _, e := range cfg.Events {
		if !ValidEvent(e) {
			return nil, fmt.Errorf("eventlistener:%s: unknown event type %s", cfg.Name, e)
		}
	}
	if cfg.BufferSize < 0 {
		return nil, fmt.Errorf("eventlistener:%s: buffer_size %d is negative", cfg.Name, cfg.BufferSize)
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		bus:    b,
		name:   cfg.Name,
		subs:   slices.Clone(cfg.Events),
		size:   cfg.BufferSize,
		log:    log.With("eventlistener", cfg.Name),
		serial: -1,
		ls:     map[int]*listener{},
	}
	p.cond = sync.NewCond(&p.mu)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("event listener bus is closed")
	}
	for _, o := range b.pools {
		if o.name == cfg.Name {
			return nil, fmt.Errorf("eventlistener:%s: a pool of that name exists", cfg.Name)
		}
	}
	b.pools = append(b.pools, p)
	b.retickLocked()
	return p, nil
}

// Publish hands ev to every pool subscribed to its type. An event no
// pool takes costs nothing (and no serial). It never blocks on a
// listener.
func (b *Bus) Publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.publishLocked(ev)
}

func (b *Bus) publishLocked(ev Event) {
	if b.closed {
		return
	}
	serial := int64(-1)
	for _, p := range b.pools {
		if !p.wants(ev.Name) {
			continue
		}
		if serial < 0 {
			serial = b.nextSerialLocked()
		}
		p.accept(ev, serial)
	}
}

func (b *Bus) nextSerialLocked() int64 {
	b.serial++
	if b.serial < 0 { // wrapped
		b.serial = 0
	}
	return b.serial
}

// Close ends every pool (Pool.Close) and the tick timer.
func (b *Bus) Close() {
	b.mu.Lock()
	pools := b.pools
	b.pools = nil
	b.closed = true
	b.retickLocked()
	b.mu.Unlock()
	for _, p := range pools {
		p.close()
	}
}

// Pool is one [eventlistener:x]: its subscriptions, its event buffer and
// its listeners (numprocs of them share the buffer), each known by its
// slot number wid.
type Pool struct {
	bus  *Bus
	name string
	subs []string
	size int
	log  *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond // on mu: a listener's writer parks on it
	serial  int64      // the last pool serial given
	buf     []*queued
	ls      map[int]*listener
	dropped uint64
	closed  bool
	// frozen: a live upgrade holds the pool still (handover.go): no
	// event is sent and every writer parks between two writes.
	frozen bool
}

type queued struct {
	ev         Event
	serial     int64
	poolSerial int64
}

// listener is one process of a pool, from the Stdin call before its spawn
// to its end. Its fields are guarded by the pool's mutex.
type listener struct {
	wid, pid int
	state    string
	// unwritten are the envelope bytes writeLoop has not written to its
	// standard input yet (w); parked: writeLoop waits on the pool's cond.
	unwritten []byte
	parked    bool
	w         *os.File      // the write end of its standard input
	written   chan struct{} // closed when writeLoop returns
	inflight  *queued
	buf       []byte // stdout not yet consumed by the protocol
	resultLen int    // the n of the RESULT line being read; -1 before it
	result    []byte
	dead      bool
}

// Name is the pool's name (the x of [eventlistener:x]).
func (p *Pool) Name() string { return p.name }

func (p *Pool) wants(name string) bool {
	for _, s := range p.subs {
		if Matches(s, name) {
			return true
		}
	}
	return false
}

// Publish hands ev to this pool only, when it subscribes to ev's type
// (Bus.Publish hands it to every pool).
func (p *Pool) Publish(ev Event) {
	b := p.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || !p.wants(ev.Name) {
		return
	}
	p.accept(ev, b.nextSerialLocked())
}

func (p *Pool) accept(ev Event, serial int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.serial++
	if p.serial < 0 {
		p.serial = 0
	}
	p.bufferLocked(&queued{ev: ev, serial: serial, poolSerial: p.serial}, false)
	p.dispatchLocked()
}

// bufferLocked queues q: at the tail, or at the head for an event given
// back. A full buffer drops its oldest event first, as supervisord does.
func (p *Pool) bufferLocked(q *queued, head bool) {
	if len(p.buf) >= p.size {
		old := p.buf[0]
		p.buf = p.buf[1:]
		p.dropped++
		p.log.Error("event buffer overflowed, discarding event", "serial", old.serial,
			"event", old.ev.Name, "buffer_size", p.size)
	}
	if head {
		p.buf = slices.Insert(p.buf, 0, q)
	} else {
		p.buf = append(p.buf, q)
	}
}

// dispatchLocked sends the oldest events to READY listeners, lowest wid
// first, while both last.
func (p *Pool) dispatchLocked() {
	for len(p.buf) > 0 && !p.frozen {
		var l *listener
		for _, c := range p.ls {
			if c.state == Ready && !c.dead && (l == nil || c.wid < l.wid) {
				l = c
			}
		}
		if l == nil {
			return
		}
		q := p.buf[0]
		p.buf = p.buf[1:]
		env := p.envelope(q)
		if len(l.unwritten)+len(env) > maxUnwritten && len(l.unwritten) > 0 {
			// Only a listener that raced ahead of the protocol (answers
			// without reading its events).
			p.buf = slices.Insert(p.buf, 0, q)
			p.unknownLocked(l, "its input is full")
			continue
		}
		l.unwritten = append(l.unwritten, env...)
		l.state = Busy
		l.inflight = q
		p.cond.Broadcast()
		p.log.Debug("event sent to listener", "serial", q.serial, "event", q.ev.Name, "wid", l.wid, "pid", l.pid)
	}
}

// envelope is the header line and payload a listener reads.
func (p *Pool) envelope(q *queued) []byte {
	h := "ver:3.0 server:" + p.bus.server + " serial:" + strconv.FormatInt(q.serial, 10) +
		" pool:" + p.name + " poolserial:" + strconv.FormatInt(q.poolSerial, 10) +
		" eventname:" + q.ev.Name + " len:" + strconv.Itoa(payloadLen(q.ev.Payload)) + "\n"
	return []byte(h + q.ev.Payload)
}

// Stdin makes the standard input of slot wid's next process (watcher's
// Spec.Stdin): the read end is the child's, and the pool writes events
// to the other. A listener still known for wid ends first (its event in
// flight, if any, goes back to the buffer).
func (p *Pool) Stdin(wid int) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("eventlistener:%s is closed", p.name)
	}
	l := &listener{wid: wid, state: Acknowledged, w: w, written: make(chan struct{}), resultLen: -1}
	if old := p.ls[wid]; old != nil {
		p.endLocked(old, "replaced by a new process")
		p.dispatchLocked() // its event, to another listener
	}
	p.ls[wid] = l
	go p.writeLoop(l)
	return r, nil
}

// writeLoop writes l's envelopes to its standard input until l ends.
// While the pool is frozen it parks between two writes; a write under
// way when the freeze begins is cut short by an expired write deadline
// and what it did not write stays in l.unwritten (handed over).
func (p *Pool) writeLoop(l *listener) {
	defer close(l.written)
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for !l.dead && (p.frozen || len(l.unwritten) == 0) {
			if !l.parked {
				l.parked = true
				p.cond.Broadcast() // freeze waits for it
			}
			p.cond.Wait()
		}
		l.parked = false
		if l.dead {
			return
		}
		b := l.unwritten
		l.unwritten = nil
		p.mu.Unlock()
		n, err := l.w.Write(b)
		p.mu.Lock()
		if n < len(b) {
			l.unwritten = slices.Concat(b[n:], l.unwritten)
		}
		switch {
		case l.dead:
			return
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			// A freeze's wake-up (or a thaw that just cleared it): the
			// loop parks or writes the rest.
		default:
			p.endLocked(l, "its standard input failed: "+err.Error())
			p.dispatchLocked()
			return
		}
	}
}

// Stdout is the sink for the listeners' standard output (watcher's
// Spec.Stdout): it reads the protocol. When tee is set, every byte also
// goes to tee's writer (the stdout_logfile), as supervisord logs a
// listener's stdout.
func (p *Pool) Stdout(tee Sink) Sink { return stdoutSink{p, tee} }

type stdoutSink struct {
	p   *Pool
	tee Sink
}

func (s stdoutSink) Open(wid, pid int) io.WriteCloser {
	w := &stdoutWriter{p: s.p}
	if s.tee != nil {
		w.tee = s.tee.Open(wid, pid)
	}
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.ls[wid]
	if l == nil || l.dead || (l.pid != 0 && l.pid != pid) {
		p.log.Warn("output of a process the pool did not start (no Stdin call for it): ignored", "wid", wid, "pid", pid)
		return w
	}
	l.pid = pid
	w.l = l
	return w
}

type stdoutWriter struct {
	p   *Pool
	l   *listener // nil: not a listener of the pool
	tee io.WriteCloser
}

func (w *stdoutWriter) Write(b []byte) (int, error) {
	if w.tee != nil {
		w.tee.Write(b) // the log's trouble is not the protocol's
	}
	if w.l != nil {
		w.p.feed(w.l, b)
	}
	return len(b), nil
}

// Partial is the unterminated line the log's writer holds (a live
// upgrade hands it over with the pipe; the protocol's own state goes
// with the pool's, PoolState).
func (w *stdoutWriter) Partial() []byte {
	if p, ok := w.tee.(interface{ Partial() []byte }); ok {
		return p.Partial()
	}
	return nil
}

// SetPartial gives the log's writer the line a live upgrade handed over.
func (w *stdoutWriter) SetPartial(b []byte) {
	if p, ok := w.tee.(interface{ SetPartial([]byte) }); ok {
		p.SetPartial(b)
	}
}

func (w *stdoutWriter) Close() error {
	if w.tee != nil {
		w.tee.Close()
	}
	if w.l != nil {
		p := w.p
		p.mu.Lock()
		p.endLocked(w.l, "its standard output closed")
		p.dispatchLocked()
		p.mu.Unlock()
	}
	return nil
}

// Exited tells the pool that slot wid's process pid ended (its stdout
// reaching EOF tells it too, unless a child of the listener keeps it
// open). Its event in flight goes to another listener.
func (p *Pool) Exited(wid, pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.ls[wid]; l != nil && l.pid == pid {
		p.endLocked(l, "exited")
		p.dispatchLocked()
	}
}

// endLocked forgets l: no more events, its standard input closes, and
// its event in flight goes back to the head of the buffer.
func (p *Pool) endLocked(l *listener, why string) {
	if l.dead {
		return
	}
	l.dead = true
	l.unwritten = nil
	p.cond.Broadcast() // its writer returns
	// Closing it also ends a write blocked on a listener that does not
	// read its input (the pipe is in the runtime's poller).
	l.w.Close()
	if p.ls[l.wid] == l {
		delete(p.ls, l.wid)
	}
	if l.inflight != nil && !p.closed {
		p.log.Warn("listener ended with an event in flight: event buffered again",
			"wid", l.wid, "pid", l.pid, "serial", l.inflight.serial, "why", why)
		p.bufferLocked(l.inflight, true)
		l.inflight = nil
	} else {
		p.log.Debug("listener ended", "wid", l.wid, "pid", l.pid, "why", why)
	}
	l.buf, l.result = nil, nil
}

// feed runs the protocol over what l wrote, as supervisord's
// PEventListenerDispatcher.handle_listener_state_change does.
func (p *Pool) feed(l *listener, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.dead {
		return
	}
	l.buf = append(l.buf, data...)
loop:
	for len(l.buf) > 0 || (l.state == Busy && l.resultLen >= 0) {
		switch l.state {
		case Unknown:
			l.buf = nil
		case Acknowledged:
			if len(l.buf) < len(readyToken) {
				break loop
			}
			if !bytes.HasPrefix(l.buf, readyToken) {
				p.unknownLocked(l, fmt.Sprintf("wrote %q where READY was due", clip(l.buf)))
				break
			}
			l.buf = l.buf[len(readyToken):]
			l.state = Ready
		case Ready:
			p.unknownLocked(l, fmt.Sprintf("wrote %q while no event was sent to it", clip(l.buf)))
		case Busy:
			if l.resultLen < 0 {
				i := bytes.IndexByte(l.buf, '\n')
				if i < 0 {
					if len(l.buf) > maxResultLine {
						p.unknownLocked(l, fmt.Sprintf("bad result line %q...", clip(l.buf)))
						break
					}
					break loop
				}
				line := l.buf[:i]
				l.buf = l.buf[i+1:]
				n, ok := parseResultLine(line)
				if !ok {
					p.unknownLocked(l, fmt.Sprintf("bad result line %q", clip(line)))
					break
				}
				l.resultLen = n
			}
			need := min(l.resultLen-len(l.result), len(l.buf))
			l.result = append(l.result, l.buf[:need]...)
			l.buf = l.buf[need:]
			if len(l.result) < l.resultLen {
				break loop
			}
			p.resultLocked(l, string(l.result))
		}
	}
	if len(l.buf) == 0 {
		l.buf = nil // no array kept for an idle listener
	}
	// A listener that turned READY gets the next event once everything
	// it wrote has been read (so a stray byte after READY\n is a protocol
	// error, as in supervisord, not the start of a result).
	p.dispatchLocked()
}

var readyToken = []byte("READY\n")

// parseResultLine reads "RESULT n" the way supervisord does: whatever
// follows the first 7 bytes is a (space-trimmed, optionally signed)
// decimal length.
func parseResultLine(line []byte) (int, bool) {
	s := string(bytes.TrimSpace(line[min(len(line), len("RESULT ")):]))
	if len(s) > 0 && s[0] == '+' {
		s = s[1:]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxResult {
		return 0, false
	}
	return n, true
}

// resultLocked ends l's event: OK acknowledges it, anything else rejects
// it and it goes back to the head of the buffer (supervisord's
// default_handler).
func (p *Pool) resultLocked(l *listener, result string) {
	q := l.inflight
	l.inflight = nil
	l.result = nil
	l.resultLen = -1
	l.state = Acknowledged
	if q == nil {
		return
	}
	if result == "OK" {
		p.log.Debug("event was processed", "serial", q.serial, "wid", l.wid, "pid", l.pid)
		return
	}
	p.log.Warn("event was rejected: buffered again", "serial", q.serial, "event", q.ev.Name,
		"wid", l.wid, "pid", l.pid, "result", clip([]byte(result)))
	p.bufferLocked(q, true)
}

// unknownLocked puts l in the UNKNOWN state for breaking the protocol: it
// gets no more events until it is restarted, and its event in flight
// goes back to the buffer.
func (p *Pool) unknownLocked(l *listener, why string) {
	l.state = Unknown
	l.buf = nil
	l.result = nil
	l.resultLen = -1
	p.log.Warn("listener has entered the UNKNOWN state and will no longer receive events, "+
		"this usually indicates the process violated the eventlistener protocol",
		"wid", l.wid, "pid", l.pid, "why", why)
	if q := l.inflight; q != nil {
		l.inflight = nil
		p.bufferLocked(q, true)
	}
}

func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80])
	}
	return string(b)
}

// ListenerState is the protocol state of slot wid's listener
// (Acknowledged, Ready, Busy, Unknown), or "" when the pool has none.
func (p *Pool) ListenerState(wid int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.ls[wid]; l != nil {
		return l.state
	}
	return ""
}

// Buffered is how many events wait for a listener.
func (p *Pool) Buffered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.buf)
}

// Dropped is how many events the pool discarded because its buffer was
// full.
func (p *Pool) Dropped() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// Close removes the pool from its bus: its listeners' standard inputs
// close and its buffered events are dropped.
func (p *Pool) Close() {
	b := p.bus
	b.mu.Lock()
	if i := slices.Index(b.pools, p); i >= 0 {
		b.pools = slices.Delete(b.pools, i, i+1)
		b.retickLocked()
	}
	b.mu.Unlock()
	p.close()
}

func (p *Pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, l := range p.ls {
		p.endLocked(l, "pool closed")
	}
	p.buf = nil
}
