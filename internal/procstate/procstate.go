package procstate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

	mu     sync.Mutex
	state  State
	procs  map[int]Proc
	closed bool
	err    error // last write error, reported once

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
	if err := f.write(); err != nil {
		return err
	}
	go f.loop()
	return nil
}

// SetCgroup records circled's cgroup subtree.
func (f *File) SetCgroup(path string) {
	f.mu.Lock()
	f.state.Cgroup = path
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
	f.mu.Lock()
	f.procs[pid] = Proc{Watcher: watcher, WID: wid, PID: pid, Start: start, PGID: pid}
	f.mu.Unlock()
	f.changed()
}

// Ended forgets pid: it and the rest of its group are gone.
func (f *File) Ended(pid int) {
	f.mu.Lock()
	_, ok := f.procs[pid]
	delete(f.procs, pid)
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
			f.write()
		}
	}
}

// write replaces the file atomically: a new temporary file (never an
// existing one: O_EXCL|O_NOFOLLOW), then rename.
func (f *File) write() error {
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
	f.mu.Unlock()
	sort.Slice(st.Procs, func(i, j int) bool { return st.Procs[i].PID < st.Procs[j].PID })
	err := writeAtomic(f.path, encode(&st))
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
	return err
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	t, err := openExcl(tmp)
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

func encode(st *State) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nowner %d %d\n", magic, st.OwnerPID, st.OwnerStart)
	if st.Cgroup != "" {
		fmt.Fprintf(&b, "cgroup %s\n", strconv.Quote(st.Cgroup))
	}
	for _, p := range st.Procs {
		fmt.Fprintf(&b, "proc %d %d %d %d %s\n", p.PID, p.Start, p.PGID, p.WID, strconv.Quote(p.Watcher))
	}
	return []byte(b.String())
}

func decode(r io.Reader) (*State, error) {
	sc := bufio.NewScanner(r)
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
			st.Procs = append(st.Procs, p)
		}
	}
	return st, sc.Err()
}
