package sockets

import (
	"fmt"
	"os"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// Handed is one socket a live upgrade hands to the next binary of the
// same process: its descriptor (inherited across the exec) and what
// Close needs to remove the unix socket file Bind made.
type Handed struct {
	Name string `json:"name"`
	FD   int    `json:"fd"`
	Addr string `json:"addr"`
	Path string `json:"path,omitempty"`
	Dev  uint64 `json:"dev,omitempty"`
	Ino  uint64 `json:"ino,omitempty"`
}

// Hand lists the set's sockets for a live upgrade, and their files (the
// caller has them inherited by the new binary).
func (s *Set) Hand() ([]Handed, []*os.File) {
	if s == nil {
		return nil, nil
	}
	var hs []Handed
	var fs []*os.File
	for _, name := range s.Names() {
		sk := s.byName[name]
		fd := -1
		if rc, err := sk.File.SyscallConn(); err == nil {
			rc.Control(func(u uintptr) { fd = int(u) })
		}
		hs = append(hs, Handed{Name: name, FD: fd, Addr: sk.Addr, Path: sk.path, Dev: sk.dev, Ino: sk.ino})
		fs = append(fs, sk.File)
	}
	return hs, fs
}

// AdoptSet makes the Set of the sockets a previous binary of this process
// handed over (Hand), with their configs from cfgs (the handed-over
// config). A socket of cfgs that was not handed over is bound.
func AdoptSet(cfgs []config.Socket, hs []Handed) (*Set, error) {
	s := &Set{byName: map[string]*Socket{}}
	byName := map[string]Handed{}
	for _, h := range hs {
		byName[h.Name] = h
	}
	var rest []config.Socket
	for _, c := range cfgs {
		h, ok := byName[c.Name]
		if !ok || h.FD < 0 {
			rest = append(rest, c)
			continue
		}
		f, err := adoptFile(h.FD, c)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("socket %s: handed-over descriptor %d: %w", c.Name, h.FD, err)
		}
		s.byName[c.Name] = &Socket{Config: c, File: f, Addr: h.Addr, path: h.Path, dev: h.Dev, ino: h.Ino}
	}
	for _, c := range rest {
		sk, err := Bind(c)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.byName[c.Name] = sk
	}
	return s, nil
}
