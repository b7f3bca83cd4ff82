//go:build linux

package limits

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// WatchMemory makes every later Join (and Attach) of the Set watch its
// process against MaxMemory: over(wid) is called, once per process and
// from another goroutine, when the process and its descendants use more
// than MaxMemory (working set: usage less inactive file cache). Call it
// once, before the first Join. Without MaxMemory it does nothing: no
// goroutine, no timer.
//
// How: v1 registers a memory.usage_in_bytes threshold at MaxMemory
// (cgroup.event_control and an eventfd: the kernel wakes circled when
// usage crosses it); v2 watches memory.events with inotify, memory.high
// being MaxMemory (unless memory_high is set) so that "high" counts
// when usage passes it. Each event reads the working set. While raw
// usage stays above MaxMemory but the working set does not (page cache),
// and where no event exists (v2 with memory_high above max_memory, or a
// registration that failed), the working set is sampled every
// MaxMemoryInterval instead.
func (s *Set) WatchMemory(over func(wid int)) {
	if s.l.MaxMemory <= 0 {
		return
	}
	s.mu.Lock()
	s.over = over
	s.mu.Unlock()
}

// memWatch is one process's max_memory watch.
type memWatch struct {
	s    *Set
	wid  int
	dir  string // the memory cgroup
	over func(int)

	mu       sync.Mutex
	off      bool
	fired    bool
	sampling bool // no event: always sample
	timer    *time.Timer
	efd, ufd *os.File // v1 threshold
	events   string   // v2: the memory.events watched
}

// arm starts c's watch; s.mu is held.
func (s *Set) arm(c *cell) *memWatch {
	w := &memWatch{s: s, wid: c.wid, dir: s.memPath(c), over: s.over}
	if s.unified {
		if s.l.MemoryHigh > 0 && s.l.MemoryHigh > s.l.MaxMemory {
			w.sampling = true // "high" comes only past memory_high
		} else if err := s.watchEvents(w); err != nil {
			w.sampling = true
		}
	} else if err := w.threshold(); err != nil {
		w.sampling = true
	}
	go w.check() // at once: a reused cgroup may be above the size already
	return w
}

// threshold registers a v1 memory.usage_in_bytes threshold at MaxMemory
// and reads its eventfd in a goroutine (parked in the runtime's poller).
func (w *memWatch) threshold() error {
	ufd, err := os.Open(filepath.Join(w.dir, "memory.usage_in_bytes"))
	if err != nil {
		return err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		ufd.Close()
		return err
	}
	ef := os.NewFile(uintptr(efd), "eventfd")
	// The kernel keeps the threshold in whole pages (rounded down) and
	// signals once usage >= it: the next page above MaxMemory is "more
	// than MaxMemory".
	pg := int64(os.Getpagesize())
	thr := (w.s.l.MaxMemory/pg + 1) * pg
	if err := cgroups.WriteFile(w.dir, "cgroup.event_control", fmt.Sprintf("%d %d %d", efd, ufd.Fd(), thr)); err != nil {
		ef.Close()
		ufd.Close()
		return err
	}
	w.efd, w.ufd = ef, ufd
	go func() {
		var b [8]byte
		for {
			if _, err := ef.Read(b[:]); err != nil {
				return // closed by stop
			}
			w.check()
		}
	}()
	return nil
}

// watchEvents adds w's memory.events to the Set's inotify watcher; s.mu
// is held.
func (s *Set) watchEvents(w *memWatch) error {
	if s.inotify == nil {
		in, err := newInotify()
		if err != nil {
			return err
		}
		s.inotify = in
	}
	w.events = filepath.Join(w.dir, "memory.events")
	return s.inotify.add(w.events, w)
}

// check compares the working set with MaxMemory, fires over once, and
// keeps sampling while it cannot rely on an event.
func (w *memWatch) check() {
	w.mu.Lock()
	if w.off || w.fired {
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	raw, ws, err := memUsage(w.dir, w.s.unified)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.off || w.fired {
		return
	}
	max := w.s.l.MaxMemory
	if err == nil && ws > max {
		w.fired = true
		if w.timer != nil {
			w.timer.Stop()
		}
		go w.over(w.wid)
		return
	}
	if w.sampling || err != nil || raw > max {
		// No event will come while usage stays above the threshold.
		if w.timer == nil {
			w.timer = time.AfterFunc(w.s.l.interval(), w.check)
		} else {
			w.timer.Reset(w.s.l.interval())
		}
	} else if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// stop ends the watch: no more over, no goroutine, no timer.
func (w *memWatch) stop() {
	w.mu.Lock()
	w.off = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	efd, ufd := w.efd, w.ufd
	w.efd, w.ufd = nil, nil
	w.mu.Unlock()
	if efd != nil {
		efd.Close() // the kernel drops the threshold with its eventfd
		ufd.Close()
	}
	if w.events != "" {
		w.s.mu.Lock()
		in := w.s.inotify
		w.s.mu.Unlock()
		if in != nil {
			in.remove(w.events, w)
		}
	}
}

// inotify watches v2 memory.events files for a Set (one goroutine).
type inotify struct {
	w  *fsnotify.Watcher
	mu sync.Mutex
	by map[string]*memWatch
}

func newInotify() (*inotify, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	in := &inotify{w: fw, by: map[string]*memWatch{}}
	go func() {
		for {
			select {
			case ev, ok := <-fw.Events:
				if !ok {
					return
				}
				in.mu.Lock()
				w := in.by[ev.Name]
				in.mu.Unlock()
				if w != nil {
					w.check()
				}
			case _, ok := <-fw.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return in, nil
}

func (in *inotify) add(path string, w *memWatch) error {
	in.mu.Lock()
	in.by[path] = w
	in.mu.Unlock()
	if err := in.w.Add(path); err != nil {
		in.mu.Lock()
		delete(in.by, path)
		in.mu.Unlock()
		return err
	}
	return nil
}

func (in *inotify) remove(path string, w *memWatch) {
	in.mu.Lock()
	mine := in.by[path] == w
	if mine {
		delete(in.by, path)
	}
	in.mu.Unlock()
	if mine {
		in.w.Remove(path)
	}
}

func (in *inotify) close() { in.w.Close() }
