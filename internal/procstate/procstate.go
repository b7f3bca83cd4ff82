package procstate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Proc is one recorded process: the main process of a watcher's slot,
// and the process group it leads.
type Proc struct {
	Watcher string
	WID     int
	PID     int
	Start   uint64 // process start time (clock ticks since boot on Linux)
	PGID    int
}

// State is a state file's content.
type State struct {
	OwnerPID   int
	OwnerStart uint64
	Cgroup     string // circled's cgroup subtree, if it had one
	Procs      []Proc
}

// File is the state file of this circled.
type File struct {
	path string

	wmu    sync.Mutex // one writer of the file (loop, Start, Close)
	mu     sync.Mutex
	state  State
	procs  map[int]Proc
	closed bool
	err    error // last write error, reported once

	// The file is a journal: a full snapshot (write), then one line
	// per change appended to it ("proc ..." for Started, "end PID" for
	// Ended), each a single small write(2), which a kill cannot tear.
	// Once the journal outgrows the snapshot it would replace, the next
	// write is a full snapshot again. (A snapshot per change meant a
	// rename per spawn and per exit: on ext4 each rename over an existing
	// file starts writeback of the new one, and under a crash loop that
	// was a third of circled's CPU.)
	app     *os.File // the journal, open for appending; nil: snapshot next
	appSize int      // bytes in the journal
	pending []byte   // lines not yet appended (guarded by mu)
	full    bool     // a full snapshot is due (guarded by mu)

	dirty chan struct{}
	done  chan struct{}
}

// Open checks that the directory of path is safe (a directory owned by
// circled's user or root that nobody else can write), reads the previous
// content (nil if there is none) and returns the File that this circled
// writes from now on. It does not write anything until Start.
func Open(path string) (*File, *State, error) {
	if err := checkDir(filepath.Dir(path)); err != nil {
		return nil, nil, err
	}
	prev, err := read(path)
	if err != nil {
		return nil, nil, err
	}
	f := &File{path: path, procs: map[int]Proc{}, dirty: make(chan struct{}, 1), done: make(chan struct{})}
	f.state.OwnerPID = os.Getpid()
	f.state.OwnerStart, _ = StartTime(os.Getpid())
	return f, prev, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Start writes the file now and then after every change.
func (f *File) Start() error {
	err := f.write()
	// Even when the first write failed: each change retries a snapshot
	// (f.app is nil), and the loop drains pending.
	go f.loop()
	return err
}

// SetCgroup records circled's cgroup subtree.
func (f *File) SetCgroup(path string) {
	f.mu.Lock()
	f.state.Cgroup = path
	f.full = true
	f.mu.Unlock()
	f.changed()
}

// Started records a process (a watcher's main process, leading its own
// process group). start is its start time (StartTime); 0 if unknown, and
// then it is not recorded: recovery never signals a pid it cannot verify.
func (f *File) Started(watcher string, wid, pid int, start uint64) {
	if start == 0 {
		return
	}
	p := Proc{Watcher: watcher, WID: wid, PID: pid, Start: start, PGID: pid}
	f.mu.Lock()
	f.procs[pid] = p
	f.pending = appendProc(f.pending, p)
	f.boundPendingLocked()
	f.mu.Unlock()
	f.changed()
}

// maxPending bounds the journal lines held for the writer: past it they
// are dropped and the next write is a snapshot (which holds every
// process), so memory stays bounded however far the writer lags (or when
// every write fails) under a crash loop.
const maxPending = 32 << 10

func (f *File) boundPendingLocked() {
	if len(f.pending) > maxPending {
		f.pending, f.full = nil, true
	}
}

// Ended forgets pid: it and the rest of its group are gone.
func (f *File) Ended(pid int) {
	f.mu.Lock()
	_, ok := f.procs[pid]
	delete(f.procs, pid)
	if ok {
		f.pending = append(f.pending, "end "...)
		f.pending = strconv.AppendInt(f.pending, int64(pid), 10)
		f.pending = append(f.pending, '\n')
		f.boundPendingLocked()
	}
	f.mu.Unlock()
	if ok {
		f.changed()
	}
}

// Close stops the writes and removes the file: a clean exit leaves
// nothing to recover.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	close(f.done)
	f.wmu.Lock()
	if f.app != nil {
		f.app.Close()
		f.app = nil
	}
	f.wmu.Unlock()
	err := os.Remove(f.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return err
}

// Err is the last write error (nil if the last write worked).
func (f *File) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *File) changed() {
	select {
	case f.dirty <- struct{}{}:
	default:
	}
}

func (f *File) loop() {
	for {
		select {
		case <-f.done:
			return
		case <-f.dirty:
			f.update()
		}
	}
}

// update appends the pending lines to the journal, or writes a full
// snapshot when one is due, the journal is not open, or it has grown
// past twice the snapshot's size (plus 4 KiB).
func (f *File) update() error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	lines := f.pending
	f.pending = nil
	snapshot := f.full || f.app == nil || f.appSize+len(lines) > 2*f.snapSizeLocked()+4096
	f.mu.Unlock()
	if !snapshot && !sameFile(f.app, f.path) {
		snapshot = true // removed or replaced behind our back: write it again
	}
	if snapshot {
		return f.writeLocked()
	}
	if len(lines) == 0 {
		return nil
	}
	_, err := f.app.Write(lines)
	f.appSize += len(lines)
	if err != nil {
		return f.writeLocked() // the journal is in doubt: a snapshot replaces it
	}
	return nil
}

// snapSizeLocked estimates a snapshot's size (f.mu held).
func (f *File) snapSizeLocked() int {
	n := 64
	for _, p := range f.procs {
		n += 40 + len(p.Watcher)
	}
	return n
}

// sameFile reports whether path still names the file open as app.
func sameFile(app *os.File, path string) bool {
	a, err := app.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(path)
	return err == nil && os.SameFile(a, b)
}

// write writes a full snapshot.
func (f *File) write() error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return f.writeLocked()
}

// writeLocked replaces the file atomically (f.wmu held): a new temporary
// file (never an existing one: O_EXCL|O_NOFOLLOW), then rename; then it
// opens the new file for appending the next changes.
func (f *File) writeLocked() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	st := f.state
	st.Procs = make([]Proc, 0, len(f.procs))
	for _, p := range f.procs {
		st.Procs = append(st.Procs, p)
	}
	f.pending, f.full = nil, false // the snapshot includes them
	f.mu.Unlock()
	if f.app != nil {
		f.app.Close()
		f.app = nil
	}
	sort.Slice(st.Procs, func(i, j int) bool { return st.Procs[i].PID < st.Procs[j].PID })
	data := encode(&st)
	err := writeAtomic(f.path, data)
	if err == nil {
		if f.app, err = openAppend(f.path); err != nil {
			f.app = nil
		}
		f.appSize = len(data)
	}
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
	return err
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	t, err := openExcl(tmp)
	if errors.Is(err, os.ErrExist) {
		os.Remove(tmp) // left by a crash
		t, err = openExcl(tmp)
	}
	if err != nil {
		return err
	}
	_, err = t.Write(data)
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

const magic = "circled-state 1"

// maxFile bounds what is read of a state file: a snapshot of the most
// processes circled runs, with room for its journal.
const maxFile = 64 << 20

func encode(st *State) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nowner %d %d\n", magic, st.OwnerPID, st.OwnerStart)
	if st.Cgroup != "" {
		fmt.Fprintf(&b, "cgroup %s\n", strconv.Quote(st.Cgroup))
	}
	out := []byte(b.String())
	for _, p := range st.Procs {
		out = appendProc(out, p)
	}
	return out
}

// appendProc appends p's "proc" line.
func appendProc(b []byte, p Proc) []byte {
	b = append(b, "proc "...)
	b = strconv.AppendInt(b, int64(p.PID), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, p.Start, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(p.PGID), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(p.WID), 10)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, p.Watcher)
	return append(b, '\n')
}

func decode(r io.Reader) (*State, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFile))
	if err != nil {
		return nil, err
	}
	// A journal line cut short by a crash mid-write is dropped.
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() || sc.Text() != magic {
		return nil, errors.New("not a circled state file")
	}
	st := &State{}
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "owner":
			if _, err := fmt.Sscanf(rest, "%d %d", &st.OwnerPID, &st.OwnerStart); err != nil {
				return nil, fmt.Errorf("owner: %w", err)
			}
		case "cgroup":
			s, err := strconv.Unquote(rest)
			if err != nil {
				return nil, fmt.Errorf("cgroup: %w", err)
			}
			st.Cgroup = s
		case "proc":
			var p Proc
			f := strings.SplitN(rest, " ", 5)
			if len(f) != 5 {
				return nil, fmt.Errorf("proc: %q", rest)
			}
			var errs [5]error
			p.PID, errs[0] = strconv.Atoi(f[0])
			p.Start, errs[1] = strconv.ParseUint(f[1], 10, 64)
			p.PGID, errs[2] = strconv.Atoi(f[2])
			p.WID, errs[3] = strconv.Atoi(f[3])
			p.Watcher, errs[4] = strconv.Unquote(f[4])
			if err := errors.Join(errs[:]...); err != nil || p.PID <= 1 || p.PGID <= 1 || p.Start == 0 {
				return nil, fmt.Errorf("proc: %q", rest)
			}
			st.Procs = slices.DeleteFunc(st.Procs, func(q Proc) bool { return q.PID == p.PID })
			st.Procs = append(st.Procs, p)
		case "end":
			pid, err := strconv.Atoi(rest)
			if err != nil {
				return nil, fmt.Errorf("end: %q", rest)
			}
			st.Procs = slices.DeleteFunc(st.Procs, func(q Proc) bool { return q.PID == pid })
		}
	}
	return st, sc.Err()
}
