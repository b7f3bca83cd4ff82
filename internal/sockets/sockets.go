// Package sockets binds the sockets of a config's [socket:NAME] sections
// (circus's sockets): circled holds them open across restarts and reloads
// of the processes, which get them as inherited descriptors.
//
// Bind binds one socket, Set holds a config's sockets by name. Each
// Socket's File is close-on-exec in circled; exec.Cmd.ExtraFiles dups it
// into a child without the flag. The File is never put in the runtime's
// poller (its descriptor's blocking mode is the socket's blocking key, and
// os/exec leaves it alone).
package sockets

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// ErrNotSupported is returned on systems where circled cannot hold
// sockets (Windows).
var ErrNotSupported = errors.New("sockets held by circled are not supported on this system")

// Socket is one bound socket.
type Socket struct {
	Config config.Socket
	// File is the socket (listening for SOCK_STREAM).
	File *os.File
	// Addr is the bound address: "127.0.0.1:8888" (the port chosen when
	// the config says 0), "[::1]:80" or "unix:/run/x.sock".
	Addr string
	// unix socket file made by Bind, removed by Close if it is still the
	// same file.
	path     string
	dev, ino uint64
}

// Close closes the socket and removes the unix socket file Bind made, if
// it is still that file.
func (s *Socket) Close() error {
	if s == nil || s.File == nil {
		return nil
	}
	err := s.File.Close()
	if s.path != "" {
		removeIfSame(s.path, s.dev, s.ino)
	}
	return err
}

// Set is the sockets of a config, by name.
type Set struct {
	byName map[string]*Socket
}

// BindAll binds every socket of cfgs. On an error every socket bound so
// far is closed and the error names the socket.
func BindAll(cfgs []config.Socket) (*Set, error) {
	s := &Set{byName: map[string]*Socket{}}
	if _, err := s.Update(cfgs); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Update makes the set hold exactly cfgs: a socket whose config is
// unchanged (its file and line aside) stays open, one removed or changed
// is closed, then new and changed ones are bound. changed names the
// sockets closed or bound, sorted. On an error the set holds what could
// be bound; the error names each socket that could not.
func (s *Set) Update(cfgs []config.Socket) (changed []string, err error) {
	if s.byName == nil {
		s.byName = map[string]*Socket{}
	}
	want := map[string]config.Socket{}
	for _, c := range cfgs {
		want[c.Name] = c
	}
	for name, cur := range s.byName {
		if c, ok := want[name]; ok && same(c, cur.Config) {
			delete(want, name)
			continue
		}
		cur.Close()
		delete(s.byName, name)
		changed = append(changed, name)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(want)) {
		sk, err := Bind(want[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.byName[name] = sk
		if !slices.Contains(changed, name) {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	return changed, errors.Join(errs...)
}

func same(a, b config.Socket) bool {
	a.File, a.Line, b.File, b.Line = "", 0, "", 0
	return a == b
}

// Get returns the socket called name, or nil.
func (s *Set) Get(name string) *Socket {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// Names lists the sockets held, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.byName))
}

// Files returns the files of the sockets names, in that order (a
// watcher's config.Watcher.Sockets: descriptors 3, 4, ...).
func (s *Set) Files(names []string) ([]*os.File, error) {
	out := make([]*os.File, 0, len(names))
	for _, n := range names {
		sk := s.Get(n)
		if sk == nil {
			return nil, fmt.Errorf("socket %q is not bound", n)
		}
		out = append(out, sk.File)
	}
	return out, nil
}

// Close closes every socket.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for name, sk := range s.byName {
		if err := sk.Close(); err != nil {
			errs = append(errs, fmt.Errorf("socket %s: %w", name, err))
		}
		delete(s.byName, name)
	}
	return errors.Join(errs...)
}
