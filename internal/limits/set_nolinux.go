//go:build !linux

package limits

import (
	"errors"
	"time"
)

// Set makes the limit cgroups of one watcher's processes: only Linux has
// them. Here a Set exists only for no limits, and does nothing.
type Set struct{ l Limits }

// New returns a Set that does nothing when l sets no limit, and
// ErrUnsupported otherwise (Windows: see ApplyJob).
func New(parent string, l Limits) (*Set, error) {
	if !l.IsZero() {
		return nil, ErrUnsupported
	}
	return &Set{l: l}, nil
}

// V2 is false: no cgroups here.
func (s *Set) V2() bool { return false }

// Limits are the Set's limits.
func (s *Set) Limits() Limits { return s.l }

// Join returns no directory.
func (s *Set) Join(wid int) (dirs []string, done func(), err error) { return nil, func() {}, nil }

// Attach does nothing.
func (s *Set) Attach(wid int, dir string) (done func(), err error) { return func() {}, nil }

// OOMKilled is false.
func (s *Set) OOMKilled(wid int) bool { return false }

// Running is false.
func (s *Set) Running(wid int) bool { return false }

// WatchMemory does nothing.
func (s *Set) WatchMemory(over func(wid int)) {}

// Usage is unknown here.
type Usage struct {
	Memory int64
	CPU    time.Duration
}

// Usage is unknown here.
func (s *Set) Usage(wid int) (Usage, error) {
	return Usage{-1, -1}, errors.New("limits: no cgroups on this system")
}

// Close does nothing.
func (s *Set) Close() error { return nil }
