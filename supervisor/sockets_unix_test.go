//go:build unix

package supervisor

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// Sockets lists what circled bound (the actual port for port = 0, its
// own descriptor, each watcher's number); a reload that leaves the
// socket alone keeps it open (same descriptor, still accepting).
func TestSocketsInfoAndReloadKeepsOpen(t *testing.T) {
	dir := t.TempDir()
	body := "[socket:web]\nhost = 127.0.0.1\nport = 0\n[watcher:w]\ncmd = sleep 1000\nuse_sockets = true\n[watcher:x]\ncmd = sleep 1001\n"
	path := writeConfig(t, dir, body)
	s, stop := newSup(t, path)
	testhelper.Eventually(t, 10*time.Second, "all active", allActive(s))
	info := s.Sockets()
	if len(info) != 1 || info[0].Name != "web" || info[0].Family != "AF_INET" || info[0].Type != "SOCK_STREAM" || info[0].FD < 3 {
		t.Fatalf("sockets %+v", info)
	}
	if strings.HasSuffix(info[0].Address, ":0") || len(info[0].Watchers) != 1 || info[0].Watchers[0] != (SocketUse{Watcher: "w", FD: 3}) {
		t.Fatalf("sockets %+v", info)
	}
	c, err := net.Dial("tcp", info[0].Address)
	if err != nil {
		t.Fatalf("dial the held socket: %v", err)
	}
	c.Close()
	writeConfig(t, dir, body+"numprocesses = 2\n")
	if _, err := s.ReloadConfig(context.Background()); err != nil {
		t.Fatal(err)
	}
	if again := s.Sockets(); len(again) != 1 || again[0].Address != info[0].Address || again[0].FD != info[0].FD {
		t.Fatalf("after a reload that leaves the socket: %+v, before %+v", again, info)
	}
	stop()
	if c, err := net.Dial("tcp", info[0].Address); err == nil {
		c.Close()
		t.Fatalf("socket still open after Close")
	}
}
