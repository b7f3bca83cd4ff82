//go:build unix

package sockets

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/circle-supervisor/circle/supervisor/config"
)

func inet(name, host string, port int) config.Socket {
	fam := "AF_INET"
	if strings.Contains(host, ":") {
		fam = "AF_INET6"
	}
	return config.Socket{Name: name, Family: fam, Type: "SOCK_STREAM", Host: host, Port: port, Backlog: 16, Umask: -1}
}

func unixSock(name, path string) config.Socket {
	return config.Socket{Name: name, Family: "AF_UNIX", Type: "SOCK_STREAM", Path: path, Backlog: 16, Umask: -1}
}

// accept accepts one connection on s through a listener made from a dup
// of its descriptor, and checks a byte goes through.
func roundTrip(t *testing.T, s *Socket, network, addr string) {
	t.Helper()
	ln, err := net.FileListener(s.File)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = c.Write([]byte("x"))
			c.Close()
		}
		done <- err
	}()
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "x" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func nonblocking(t *testing.T, f *os.File) bool {
	t.Helper()
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl&unix.O_NONBLOCK != 0
}

func TestTCP4(t *testing.T) {
	s, err := Bind(inet("web", "127.0.0.1", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") || strings.HasSuffix(s.Addr, ":0") {
		t.Fatalf("Addr = %q", s.Addr)
	}
	if !nonblocking(t, s.File) {
		t.Error("the descriptor is blocking (circus's default is non-blocking)")
	}
	fl, _ := unix.FcntlInt(s.File.Fd(), unix.F_GETFD, 0)
	if fl&unix.FD_CLOEXEC == 0 {
		t.Error("the descriptor is not close-on-exec in circled")
	}
	roundTrip(t, s, "tcp", s.Addr)
	// The port is held: binding it again without so_reuseport fails, and
	// the error names the socket.
	_, port, _ := net.SplitHostPort(s.Addr)
	c := inet("again", "127.0.0.1", atoi(port))
	if _, err := Bind(c); err == nil || !strings.Contains(err.Error(), "socket again (127.0.0.1:"+port+")") || !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("second bind: %v", err)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestTCP6(t *testing.T) {
	s, err := Bind(inet("v6", "::1", 0))
	if err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EAFNOSUPPORT) {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Addr, "[::1]:") {
		t.Fatalf("Addr = %q", s.Addr)
	}
	roundTrip(t, s, "tcp6", s.Addr)
}

func TestLocalhostResolves(t *testing.T) {
	s, err := Bind(inet("lh", "localhost", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Addr, "127.") {
		t.Errorf("Addr = %q", s.Addr)
	}
}

func TestReusePort(t *testing.T) {
	c := inet("a", "127.0.0.1", 0)
	c.ReusePort = true
	a, err := Bind(c)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, port, _ := net.SplitHostPort(a.Addr)
	c.Name, c.Port = "b", atoi(port)
	b, err := Bind(c)
	if err != nil {
		t.Fatalf("so_reuseport: second bind: %v", err)
	}
	defer b.Close()
	if b.Addr != a.Addr {
		t.Errorf("%s != %s", b.Addr, a.Addr)
	}
}

func TestDgramAndBlocking(t *testing.T) {
	c := inet("udp", "127.0.0.1", 0)
	c.Type, c.Blocking = "SOCK_DGRAM", true
	s, err := Bind(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if nonblocking(t, s.File) {
		t.Error("blocking = true, but the descriptor is non-blocking")
	}
	pc, err := net.FilePacketConn(s.File)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	out, err := net.Dial("udp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := out.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

func TestUnix(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.sock")
	c := unixSock("app", p)
	c.Umask = 0o077
	s, err := Bind(c)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket file %v %v", fi.Mode(), err)
	}
	if s.Addr != "unix:"+p {
		t.Errorf("Addr = %q", s.Addr)
	}
	roundTrip(t, s, "unix", p)

	// A second bind finds the file: an error without replace.
	if _, err := Bind(unixSock("app2", p)); err == nil || !strings.Contains(err.Error(), "exists (replace = true removes a stale socket file)") {
		t.Errorf("bind over an existing socket: %v", err)
	}
	// Close removes the file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close: %v", err)
	}
}

func TestUnixReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "stale.sock")
	// A stale socket: bound, then its descriptor closed (the file stays).
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: p}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	c := unixSock("s", p)
	c.Replace = true
	s, err := Bind(c)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s, "unix", p)
	// The file at the path is replaced by another: Close leaves it.
	os.Remove(p)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Lstat(p); err != nil {
		t.Errorf("Close removed a file it did not make: %v", err)
	}

	// replace never removes what is not a socket, nor a symlink.
	if _, err := Bind(c); err == nil || !strings.Contains(err.Error(), "exists and is not a socket; refusing to remove it") {
		t.Errorf("bind over a regular file: %v", err)
	}
	os.Remove(p)
	target := filepath.Join(dir, "target.sock")
	fd, _ = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	unix.Bind(fd, &unix.SockaddrUnix{Name: target})
	unix.Close(fd)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if _, err := Bind(c); err == nil || !strings.Contains(err.Error(), "is a symbolic link; refusing to follow or remove it") {
		t.Errorf("bind over a symlink: %v", err)
	}
	if _, err := os.Lstat(target); err != nil {
		t.Errorf("the symlink's target was removed: %v", err)
	}
}

func TestUnixUnsafeDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Bind(unixSock("s", filepath.Join(dir, "s.sock")))
	if err == nil || !strings.Contains(err.Error(), "unsafe directory "+dir+" on the way to the socket") {
		t.Errorf("bind in a world-writable directory: %v", err)
	}
	// A sticky one (like /tmp) is fine.
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	s, err := Bind(unixSock("s", filepath.Join(dir, "s.sock")))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A missing directory is an error, not created.
	if _, err := Bind(unixSock("s", filepath.Join(dir, "missing", "s.sock"))); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bind in a missing directory: %v", err)
	}
}

// A Set keeps an unchanged socket open across Update (same descriptor,
// same port), rebinds a changed one, closes a removed one.
func TestSetUpdate(t *testing.T) {
	dir := t.TempDir()
	keep := inet("keep", "127.0.0.1", 0)
	gone := unixSock("gone", filepath.Join(dir, "gone.sock"))
	set, err := BindAll([]config.Socket{keep, gone})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	k := set.Get("keep")
	files, err := set.Files([]string{"keep", "gone"})
	if err != nil || len(files) != 2 || files[0] != k.File {
		t.Fatalf("Files %v %v", files, err)
	}
	keep2 := keep
	keep2.File, keep2.Line = "other.ini", 9 // moved: the same socket
	added := inet("added", "127.0.0.1", 0)
	changed, err := set.Update([]config.Socket{keep2, added})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(changed, ",") != "added,gone" {
		t.Errorf("changed %q", changed)
	}
	if set.Get("keep") != k {
		t.Error("an unchanged socket was rebound")
	}
	if _, err := os.Lstat(filepath.Join(dir, "gone.sock")); !os.IsNotExist(err) {
		t.Errorf("removed socket's file: %v", err)
	}
	if _, err := set.Files([]string{"gone"}); err == nil {
		t.Error("Files of a removed socket")
	}
	roundTrip(t, set.Get("keep"), "tcp", k.Addr)
	if got := strings.Join(set.Names(), ","); got != "added,keep" {
		t.Errorf("Names %q", got)
	}
	// A failing socket is reported by name; the others stay.
	bad := unixSock("bad", filepath.Join(dir, "missing", "x.sock"))
	if _, err := set.Update([]config.Socket{keep2, added, bad}); err == nil || !strings.Contains(err.Error(), "socket bad") {
		t.Errorf("Update with a bad socket: %v", err)
	}
	if set.Get("keep") == nil || set.Get("added") == nil {
		t.Error("a failing socket took the others down")
	}
}
