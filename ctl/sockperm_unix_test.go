//go:build unix

package ctl_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// The test binary doubles as a daemon and a client run as another user
// (see runAs): TestMain dispatches on helperEnv.
const (
	helperEnv       = "CTL_TEST_HELPER"        // "listen", "status" or "dial-stdio"
	helperSocketEnv = "CTL_TEST_HELPER_SOCKET" // "" = ctl.DefaultSocketPath()
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Getenv(helperSocketEnv)))
	}
	os.Exit(m.Run())
}

// runHelper is the helper process: "listen" serves a fake backend on the
// socket until stdin closes, printing "listening PATH" once it listens;
// "status" asks the daemon for its status and prints "ok NAME...". Both
// print "error: ..." and exit 1 on failure.
func runHelper(mode, sock string) int {
	if sock == "" {
		sock = ctl.DefaultSocketPath()
	}
	switch mode {
	case "listen":
		ln, err := ctl.Listen(sock, 0o600)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("listening", sock)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
		if err := ctl.Serve(ctx, ln, ctl.NewHandler(ctltest.NewFake("web"), nil)); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		return 0
	case "status":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := ctl.NewClient(sock).Status(ctx, nil)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Print("ok")
		for _, w := range st.Watchers {
			fmt.Print(" ", w.Name)
		}
		fmt.Println()
		return 0
	case "dial-stdio": // what circlectl dial-stdio does
		conn, err := ctl.Dial(context.Background(), sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 4
		}
		if err := ctl.Proxy(context.Background(), conn, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 1
		}
		return 0
	}
	fmt.Println("error: unknown helper mode", mode)
	return 2
}

const (
	nobody   = ctltest.Nobody
	attacker = ctltest.Attacker
)

// runAs runs a helper mode to its end as uid and returns its output and
// exit code.
func runAs(t *testing.T, bin string, uid int, mode, sock string) (string, int) {
	t.Helper()
	stdout, stderr, code := ctltest.Run(t, helperCmd(bin, uid, mode, sock))
	return stdout + stderr, code
}

func helperCmd(bin string, uid int, mode, sock string) *exec.Cmd {
	return ctltest.CommandAs(uid, []string{helperEnv + "=" + mode, helperSocketEnv + "=" + sock}, bin)
}

// serveAs starts the "listen" helper as uid and waits until it listens.
// Cleanup closes its stdin and waits for it to exit 0.
func serveAs(t *testing.T, bin string, uid int, sock string) string {
	t.Helper()
	cmd := helperCmd(bin, uid, "listen", sock)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("daemon helper as uid %d: %v", uid, err)
		}
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		if !strings.HasPrefix(l, "listening ") {
			t.Fatalf("daemon helper as uid %d: %q", uid, l)
		}
		return strings.TrimSpace(strings.TrimPrefix(l, "listening "))
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon helper as uid %d did not listen within 60s", uid)
	}
	return ""
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s: %q\ndoes not say %q", what, s, sub)
		}
	}
}

// The attack of issue 13: another user creates nobody's socket directory
// (0777) and puts a fake daemon in it. nobody's client refuses it without
// connecting, and nobody's daemon refuses the directory.
func TestSocketDirOfAnotherUser(t *testing.T) {
	ctltest.NeedRoot(t)
	bin := ctltest.TestBinary(t)
	dir := filepath.Join(ctltest.PublicDir(t), "circled-65534")
	ctltest.MkdirOwned(t, dir, attacker, 0o777)
	sock := filepath.Join(dir, "circled.sock")
	imp := ctltest.ServeImpostor(t, sock, attacker)

	want := []string{"unsafe socket directory " + dir + ":", "owned by uid 4242 with mode 0777",
		"it must be owned by nobody (uid 65534) or root and not writable by group or others"}
	out, code := runAs(t, bin, nobody, "status", sock)
	if code != 1 || strings.Contains(out, "ok") {
		t.Errorf("nobody's client: exit %d, %q; want a refusal", code, out)
	}
	mustContain(t, "client error", out, append(want, "daemon not reachable on "+sock)...)
	if n := imp.Conns(); n != 0 || len(imp.Calls()) != 0 {
		t.Errorf("the client connected to the impostor: %d connections, calls %v", n, imp.Calls())
	}

	out, code = runAs(t, bin, nobody, "listen", sock)
	if code != 1 {
		t.Errorf("nobody's daemon: exit %d, %q; want a refusal", code, out)
	}
	mustContain(t, "daemon error", out, want...)
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("the other user's socket was touched: %v, %v", fi, err)
	}
	if imp.Conns() != 0 {
		t.Errorf("the daemon probed the impostor's socket")
	}

	// Root's own daemon refuses it too.
	if l, err := ctl.Listen(sock, 0o600); err == nil {
		l.Close()
		t.Error("root's Listen accepted a directory of uid 4242")
	} else if !errors.Is(err, ctl.ErrUnsafeSocket) {
		t.Errorf("root's Listen: %v, want ErrUnsafeSocket", err)
	} else {
		mustContain(t, "root's Listen", err.Error(), "owned by uid 4242 with mode 0777", "it must be owned by root and")
	}
}

// A socket directly in a sticky world-writable directory (like
// socket = /tmp/x.sock): the directory is accepted, the socket must belong
// to the user or root.
func TestSocketInStickyDir(t *testing.T) {
	ctltest.NeedRoot(t)
	bin := ctltest.TestBinary(t)
	tmp := filepath.Join(ctltest.PublicDir(t), "tmp")
	ctltest.MkdirOwned(t, tmp, 0, 0o777|os.ModeSticky)

	evil := filepath.Join(tmp, "evil.sock")
	imp := ctltest.ServeImpostor(t, evil, attacker)
	want := []string{"unsafe socket " + evil + ":", "owned by uid 4242 with mode",
		"it must be a socket owned by nobody (uid 65534) or root"}
	out, code := runAs(t, bin, nobody, "status", evil)
	if code != 1 {
		t.Errorf("nobody's client: exit %d, %q; want a refusal", code, out)
	}
	mustContain(t, "client error", out, want...)
	out, code = runAs(t, bin, nobody, "listen", evil)
	if code != 1 || strings.Contains(out, "another circled") {
		t.Errorf("nobody's daemon: exit %d, %q; want a refusal naming the owner", code, out)
	}
	mustContain(t, "daemon error", out, append(want, "not using or removing it")...)
	if _, err := os.Lstat(evil); err != nil {
		t.Errorf("the other user's socket was removed: %v", err)
	}
	if n := imp.Conns(); n != 0 || len(imp.Calls()) != 0 {
		t.Errorf("the impostor was contacted: %d connections, calls %v", n, imp.Calls())
	}

	// nobody's own socket in the sticky directory works for nobody.
	mine := serveAs(t, bin, nobody, filepath.Join(tmp, "mine.sock"))
	if out, code := runAs(t, bin, nobody, "status", mine); code != 0 || out != "ok web\n" {
		t.Errorf("nobody's client on nobody's daemon: exit %d, %q", code, out)
	}
	// Root's client does not talk to another user's daemon.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := ctl.NewClient(mine).Status(ctx, nil)
	if !errors.Is(err, ctl.ErrUnsafeSocket) || !errors.Is(err, ctl.ErrUnreachable) {
		t.Fatalf("root's client on nobody's socket: %v, want ErrUnsafeSocket and ErrUnreachable", err)
	}
	mustContain(t, "root's client", err.Error(), "unsafe socket "+mine+": owned by nobody (uid 65534)",
		"it must be a socket owned by root")
}

// The default socket of a user without XDG_RUNTIME_DIR,
// /tmp/circled-UID/circled.sock: circled creates the directory 0700 and
// both ends accept it; one that another user created first is refused at
// both ends.
func TestSocketDefaultUserDir(t *testing.T) {
	ctltest.NeedRoot(t)
	bin := ctltest.TestBinary(t)
	const uid, squatted = 54321, 54322 // uids with no account, so no stale state
	dir := fmt.Sprintf("/tmp/circled-%d", uid)
	dir2 := fmt.Sprintf("/tmp/circled-%d", squatted)
	for _, d := range []string{dir, dir2} {
		os.RemoveAll(d)
		t.Cleanup(func() { os.RemoveAll(d) })
	}

	sock := serveAs(t, bin, uid, "")
	if sock != dir+"/circled.sock" {
		t.Errorf("default socket %s, want %s/circled.sock", sock, dir)
	}
	if out, code := runAs(t, bin, uid, "status", ""); code != 0 || out != "ok web\n" {
		t.Errorf("client on the default socket: exit %d, %q", code, out)
	}
	if fi, err := os.Lstat(dir); err != nil || fi.Mode() != os.ModeDir|0o700 ||
		fi.Sys().(*syscall.Stat_t).Uid != uid {
		t.Errorf("default directory: %v %v, want the user's, 0700", fi.Mode(), err)
	}

	ctltest.MkdirOwned(t, dir2, attacker, 0o777)
	want := []string{"unsafe socket directory " + dir2 + ": owned by uid 4242 with mode 0777; " +
		"it must be owned by uid 54322 or root and not writable by group or others"}
	out, code := runAs(t, bin, squatted, "listen", "")
	if code != 1 {
		t.Errorf("daemon in a squatted default directory: exit %d, %q", code, out)
	}
	mustContain(t, "daemon error", out, want...)
	out, code = runAs(t, bin, squatted, "status", "")
	if code != 1 {
		t.Errorf("client in a squatted default directory: exit %d, %q", code, out)
	}
	mustContain(t, "client error", out, want...)
}

// Root's daemon in a /run-like directory: root-owned 0755 (as systemd's
// RuntimeDirectory makes it) with socket_mode 0666, so other users' clients
// reach it. A directory circled creates itself is 0700: others get
// "permission denied", not an ownership complaint.
func TestSocketRootDaemon(t *testing.T) {
	ctltest.NeedRoot(t)
	bin := ctltest.TestBinary(t)
	run := ctltest.PublicDir(t)
	dir := filepath.Join(run, "circled")
	ctltest.MkdirOwned(t, dir, 0, 0o755)
	sock := filepath.Join(dir, "circled.sock")
	serveOn(t, sock, 0o666)
	alive(t, sock)
	if out, code := runAs(t, bin, nobody, "status", sock); code != 0 || out != "ok web\n" {
		t.Errorf("nobody's client on root's daemon: exit %d, %q", code, out)
	}

	sock2 := filepath.Join(run, "created", "circled.sock")
	serveOn(t, sock2, 0o666)
	alive(t, sock2)
	out, code := runAs(t, bin, nobody, "status", sock2)
	if code != 1 || strings.Contains(out, "unsafe") || !strings.Contains(out, "permission denied") {
		t.Errorf("nobody's client through root's 0700 directory: exit %d, %q; want permission denied", code, out)
	}
}

// serveOn serves a fake on sock (Listen with mode) until the test ends.
func serveOn(t *testing.T, sock string, mode os.FileMode) {
	t.Helper()
	ln, err := ctl.Listen(sock, mode)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Serve(ctx, ln, ctl.NewHandler(ctltest.NewFake("web"), nil)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// Modes of the directories on the way, checked for any user (everything
// here is the test user's own).
func TestSocketDirModes(t *testing.T) {
	base := testhelper.ShortDir(t)
	mk := func(name string, mode os.FileMode) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	open := mk("open", 0o777)
	group := mk("group", 0o770)
	sub := filepath.Join(open, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	sticky := mk("sticky", 0o777|os.ModeSticky)
	realDir := mk("real", 0o750)
	if err := os.Symlink("real", filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(open, filepath.Join(base, "badlink")); err != nil {
		t.Fatal(err)
	}

	refused := []struct{ sock, want string }{
		{filepath.Join(open, "c.sock"), "unsafe socket directory " + open + ": owned by "},
		{filepath.Join(group, "c.sock"), "unsafe socket directory " + group + ": owned by "},
		{filepath.Join(sub, "c.sock"), "unsafe directory " + open + " on the way to the socket: owned by "},
		{filepath.Join(base, "badlink", "c.sock"), "unsafe socket directory " + open + ": owned by "},
		{filepath.Join(base, "badlink", "sub", "c.sock"), "unsafe directory " + open + " on the way to the socket"},
	}
	for _, tt := range refused {
		ln, err := ctl.Listen(tt.sock, 0o600)
		if err == nil {
			ln.Close()
			t.Errorf("Listen(%s) accepted an unsafe path", tt.sock)
			continue
		}
		if !errors.Is(err, ctl.ErrUnsafeSocket) {
			t.Errorf("Listen(%s): %v, want ErrUnsafeSocket", tt.sock, err)
		}
		mustContain(t, "Listen", err.Error(), tt.want, "not writable by group or others")
		if _, err := os.Lstat(tt.sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Listen(%s) created the socket: %v", tt.sock, err)
		}
		// The client refuses before looking for the socket.
		_, err = ctl.NewClient(tt.sock).Status(context.Background(), nil)
		if !errors.Is(err, ctl.ErrUnsafeSocket) || !errors.Is(err, ctl.ErrUnreachable) {
			t.Errorf("client on %s: %v, want ErrUnsafeSocket and ErrUnreachable", tt.sock, err)
		} else {
			mustContain(t, "client", err.Error(), tt.want, tt.sock)
		}
	}

	for _, sock := range []string{
		filepath.Join(sticky, "c.sock"),                   // directly in a sticky directory, like /tmp/x.sock
		filepath.Join(base, "link", "c.sock"),             // through a symlink of the user's own
		filepath.Join(realDir, "new", "deeper", "c.sock"), // created 0700
	} {
		serveOn(t, sock, 0o600)
		alive(t, sock)
	}
	if fi, err := os.Stat(filepath.Join(realDir, "new")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("created directory: %v, %v; want 0700", fi, err)
	}

	// A missing socket is unreachable, not unsafe; so is a file that is not
	// a socket.
	_, err := ctl.NewClient(filepath.Join(realDir, "none.sock")).Status(context.Background(), nil)
	if !errors.Is(err, ctl.ErrUnreachable) || errors.Is(err, ctl.ErrUnsafeSocket) ||
		!strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("missing socket: %v", err)
	}
	plain := filepath.Join(realDir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ctl.NewClient(plain).Status(context.Background(), nil)
	if !errors.Is(err, ctl.ErrUnreachable) || !strings.Contains(err.Error(), plain+" is not a socket") {
		t.Errorf("regular file: %v", err)
	}
}
