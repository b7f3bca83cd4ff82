//go:build unix

package ctltest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/circle-supervisor/circle/ctl"
)

// Helpers for tests that play several local users: they need root.

// Uids for those tests: Nobody is the victim (it has an account, so
// messages name it), Attacker has none (messages say "uid 4242").
const (
	Nobody   = 65534
	Attacker = 4242
)

// NeedRoot skips the test, visibly, unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates files as other users and runs processes as them")
	}
}

// PublicDir is a fresh root-owned directory, 0755 like /run, with a short
// path (for sockets). It is removed when the test ends.
func PublicDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "pub")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// MkdirOwned creates dir owned by uid (and gid uid) with mode.
func MkdirOwned(t testing.TB, dir string, uid int, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// TestBinary is a copy of the running test binary that every user can
// execute (go test's build directory is 0700), for tests that re-run it
// as another user.
func TestBinary(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(PublicDir(t), filepath.Base(exe))
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// CommandAs runs bin with args as uid (gid uid, no supplementary groups)
// with a minimal environment (no XDG_RUNTIME_DIR, no CIRCLED_SOCKET) plus
// env.
func CommandAs(uid int, env []string, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/", "GORACE=atexit_sleep_ms=10"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)},
	}
	return cmd
}

// Run runs cmd to its end and returns its stdout, stderr and exit code.
func Run(t testing.TB, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	if ee != nil {
		code = ee.ExitCode()
	}
	t.Logf("as uid %d: %v: exit %d\nstdout: %s\nstderr: %s",
		cmd.SysProcAttr.Credential.Uid, cmd.Args[1:], code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// Impostor is a daemon serving a Fake on a socket owned by another user.
type Impostor struct {
	*Fake
	conns atomic.Int32
}

// Conns is the number of connections the impostor accepted.
func (i *Impostor) Conns() int { return int(i.conns.Load()) }

type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// ServeImpostor serves a Fake with one watcher "fake" on sock, a socket
// owned by uid that anyone may connect to, until the test ends.
func ServeImpostor(t testing.TB, sock string, uid int) *Impostor {
	t.Helper()
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(sock, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o777); err != nil {
		t.Fatal(err)
	}
	imp := &Impostor{Fake: NewFake("fake")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ctl.Serve(ctx, countingListener{ln, &imp.conns}, ctl.NewHandler(imp.Fake, nil))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("impostor: %v", err)
		}
	})
	return imp
}
