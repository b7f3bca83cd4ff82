package logs

import (
	"sync"

	"github.com/circle-supervisor/circle/internal/safefile"
)

// dirSet shares one checked directory descriptor between the files of a
// directory (and their background mills): a directory is resolved once,
// then every open, rename and removal is relative to its descriptor.
type dirSet struct {
	mu sync.Mutex
	m  map[string]*sharedDir
}

type sharedDir struct {
	*safefile.Dir
	key  string
	refs int
}

func newDirSet() *dirSet { return &dirSet{m: map[string]*sharedDir{}} }

// acquire returns path's directory, resolving it (and making it) unless
// it is open already.
func (s *dirSet) acquire(path string) (*sharedDir, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.m[path]; d != nil {
		d.refs++
		return d, nil
	}
	dir, err := safefile.OpenDir(path, true)
	if err != nil {
		return nil, err
	}
	d := &sharedDir{Dir: dir, key: path, refs: 1}
	s.m[path] = d
	return d, nil
}

// ref adds a reference to d.
func (s *dirSet) ref(d *sharedDir) *sharedDir {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.refs++
	return d
}

// release drops a reference; the last one closes the descriptor.
func (s *dirSet) release(d *sharedDir) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.refs--; d.refs > 0 {
		return
	}
	d.Close()
	if s.m[d.key] == d {
		delete(s.m, d.key)
	}
}

// forget makes the next acquire resolve each directory again; current
// holders keep theirs until they release it.
func (s *dirSet) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.m)
}
