package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/circle-supervisor/circle/internal/sockets"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/watcher"
)

// SocketInfo is one socket circled holds ([socket:NAME]), for
// `circlectl sockets` and GET /v1/sockets.
type SocketInfo struct {
	Name string
	// Address is the bound address: "127.0.0.1:43121" (the port chosen
	// when the config says 0), "[::1]:80", or the unix socket's path.
	Address string
	Family  string // AF_INET, AF_INET6, AF_UNIX
	Type    string // SOCK_STREAM, SOCK_DGRAM
	// FD is circled's own descriptor number for it.
	FD int
	// Watchers are the watchers whose processes get it, sorted by name.
	Watchers []SocketUse
}

// SocketUse is one watcher's use of a socket.
type SocketUse struct {
	Watcher string
	FD      int // the descriptor number that watcher's processes see
}

// bindSockets binds the config's sockets before any watcher exists, so
// their specs get the descriptors. An error (naming the socket) is kept
// as the startup error: Run then starts nothing and returns it.
func (s *Supervisor) bindSockets(cfg *config.Config) {
	if len(cfg.Sockets) == 0 {
		return
	}
	set, err := sockets.BindAll(cfg.Sockets)
	if err != nil {
		s.startErr = fmt.Errorf("binding the config's sockets: %w", err)
		return
	}
	s.sockets = set
	for _, n := range set.Names() {
		s.log.Info("socket bound", "socket", n, "addr", set.Get(n).Addr)
	}
}

// adoptSockets takes over the sockets a previous binary of this process
// handed over (a live upgrade) instead of binding them.
func (s *Supervisor) adoptSockets(cfg *config.Config, hs []sockets.Handed) {
	if len(cfg.Sockets) == 0 {
		return
	}
	set, err := sockets.AdoptSet(cfg.Sockets, hs)
	if err != nil {
		s.startErr = fmt.Errorf("adopting the config's sockets: %w", err)
		return
	}
	s.sockets = set
	for _, n := range set.Names() {
		s.log.Info("socket adopted", "socket", n, "addr", set.Get(n).Addr)
	}
}

// updateSockets makes the held sockets those of cfg (a reload): an
// unchanged socket stays open; a changed one is closed and bound again
// (its watchers restart, since their config changed). A socket that
// cannot be bound is logged and returned; its watchers fail to spawn with
// an error naming it. Called with opMu held.
func (s *Supervisor) updateSockets(cfg *config.Config) error {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	if s.sockets == nil {
		if len(cfg.Sockets) == 0 {
			return nil
		}
		s.sockets = &sockets.Set{}
	}
	changed, err := s.sockets.Update(cfg.Sockets)
	for _, n := range changed {
		if sk := s.sockets.Get(n); sk != nil {
			s.log.Info("socket bound", "socket", n, "addr", sk.Addr)
		} else {
			s.log.Info("socket closed", "socket", n)
		}
	}
	if err != nil {
		s.log.Error("config reload: binding sockets", "err", err)
	}
	return err
}

// specSockets gives sp the sockets wc uses. When one is not bound (a
// reload could not bind it) every spawn of the watcher fails naming it,
// rather than running the program without its socket.
func (s *Supervisor) specSockets(sp *watcher.Spec, wc *config.Watcher) {
	if len(wc.Sockets) == 0 {
		return
	}
	s.sockMu.Lock()
	err := withSockets(sp, wc, s.sockets)
	s.sockMu.Unlock()
	if err != nil {
		sp.Files, sp.ListenNames = nil, nil
		sp.Join = func(int) ([]string, func(), error) { return nil, nil, err }
	}
}

// Sockets lists the sockets circled holds, sorted by name, with the
// watchers that use each.
func (s *Supervisor) Sockets() []SocketInfo {
	cfg := s.Config()
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	var out []SocketInfo
	for _, n := range s.sockets.Names() {
		sk := s.sockets.Get(n)
		info := SocketInfo{Name: n, Address: strings.TrimPrefix(sk.Addr, "unix:"), Family: sk.Config.Family, Type: sk.Config.Type, FD: fdOf(sk)}
		for _, wc := range cfg.Watchers {
			if fd := wc.SocketFD(n); fd >= 0 {
				info.Watchers = append(info.Watchers, SocketUse{Watcher: wc.Name, FD: fd})
			}
		}
		slices.SortFunc(info.Watchers, func(a, b SocketUse) int { return strings.Compare(a.Watcher, b.Watcher) })
		out = append(out, info)
	}
	return out
}

// fdOf is a socket's descriptor number in circled, read without Fd
// (which may change the descriptor's blocking mode); -1 if unknown.
func fdOf(sk *sockets.Socket) int {
	fd := -1
	if sk == nil || sk.File == nil {
		return fd
	}
	rc, err := sk.File.SyscallConn()
	if err != nil {
		return fd
	}
	if rc.Control(func(u uintptr) { fd = int(u) }) != nil {
		return -1
	}
	return fd
}

// closeSockets closes the held sockets (and removes the unix socket
// files circled made), once the last process is gone.
func (s *Supervisor) closeSockets() {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	if err := s.sockets.Close(); err != nil && !errors.Is(err, sockets.ErrNotSupported) {
		s.log.Warn("closing sockets", "err", err)
	}
}
