//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circle-supervisor/circle/ctl/ctltest"
)

// asMainEnv makes the test binary run as circlectl itself (see TestMain),
// so tests can run the real command as another user.
const asMainEnv = "CIRCLECTL_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// The attack of issue 13: another user created nobody's socket directory
// (0777) and serves a fake daemon in it. nobody's `circlectl quit` no
// longer prints "circled stopped", `status --quiet` no longer answers from
// fake data: both refuse, exit 4, and say what is wrong, without
// connecting.
func TestSocketOfAnotherUser(t *testing.T) {
	ctltest.NeedRoot(t)
	bin := ctltest.TestBinary(t)
	dir := filepath.Join(ctltest.PublicDir(t), "circled-65534")
	ctltest.MkdirOwned(t, dir, ctltest.Attacker, 0o777)
	sock := filepath.Join(dir, "circled.sock")
	imp := ctltest.ServeImpostor(t, sock, ctltest.Attacker)

	for _, args := range [][]string{{"quit"}, {"status", "--quiet"}, {"status"}} {
		cmd := ctltest.CommandAs(ctltest.Nobody, []string{asMainEnv + "=1"}, bin,
			append([]string{"--socket", sock}, args...)...)
		stdout, stderr, code := ctltest.Run(t, cmd)
		if code != exitUnreachable || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q; want 4 and nothing", args, code, stdout)
		}
		want := "circlectl: daemon not reachable on " + sock + ": unsafe socket directory " + dir +
			": owned by uid 4242 with mode 0777; it must be owned by nobody (uid 65534) or root" +
			" and not writable by group or others"
		if !strings.HasPrefix(stderr, want) {
			t.Errorf("%v: stderr %q\nwant it to start with %q", args, stderr, want)
		}
	}
	if n := imp.Conns(); n != 0 || len(imp.Calls()) != 0 {
		t.Errorf("circlectl contacted the impostor: %d connections, calls %v", n, imp.Calls())
	}
}

// A user's circlectl reaches root's daemon in a /run-like directory
// (root-owned 0755, socket_mode 0666); root's circlectl refuses a socket
// that another user owns and says whose it is.
func TestSocketRootDaemonFromUser(t *testing.T) {
	ctltest.NeedRoot(t)
	bin := ctltest.TestBinary(t)
	dir := filepath.Join(ctltest.PublicDir(t), "circled")
	ctltest.MkdirOwned(t, dir, 0, 0o755)
	sock := filepath.Join(dir, "circled.sock")
	f := ctltest.NewFake("web")
	startDaemonAt(t, sock, 0o666, f)

	cmd := ctltest.CommandAs(ctltest.Nobody, []string{asMainEnv + "=1"}, bin, "--socket", sock, "status")
	if stdout, _, code := ctltest.Run(t, cmd); code != 0 || !strings.Contains(stdout, "web") {
		t.Errorf("nobody's status on root's daemon: exit %d, %q", code, stdout)
	}
	if f.LastCall() != "Status []" {
		t.Errorf("daemon's last call %q, want the status", f.LastCall())
	}

	other := filepath.Join(ctltest.PublicDir(t), "tmp")
	ctltest.MkdirOwned(t, other, 0, 0o777|os.ModeSticky)
	theirs := filepath.Join(other, "theirs.sock")
	imp := ctltest.ServeImpostor(t, theirs, ctltest.Nobody)
	code, stdout, stderr := circlectl("--socket", theirs, "quit")
	if code != exitUnreachable || stdout != "" || !strings.Contains(stderr,
		"unsafe socket "+theirs+": owned by nobody (uid 65534) with mode 0777; it must be a socket owned by root") {
		t.Errorf("root's quit on nobody's socket: exit %d, %q, %q", code, stdout, stderr)
	}
	if imp.Conns() != 0 {
		t.Errorf("root's circlectl connected to nobody's socket")
	}
}
