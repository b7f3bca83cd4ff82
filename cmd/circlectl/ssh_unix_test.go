//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// fakeSSH makes -H ssh:// run the remote command locally: a script in
// place of ssh that skips ssh's options and the host and runs the rest
// with sh, as sshd would with the user's shell. The remote circlectl is
// this test binary (see TestMain). It returns a file the script appends
// its arguments to, one run per line.
func fakeSSH(t *testing.T) (argsLog string) {
	t.Helper()
	dir := t.TempDir()
	argsLog = filepath.Join(dir, "args")
	script := filepath.Join(dir, "ssh")
	body := "#!/bin/sh\necho \"$*\" >> " + argsLog + "\n" +
		"while [ $# -gt 0 ] && [ \"$1\" != -- ]; do shift; done\nshift 2\nexec /bin/sh -c \"$1\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(ctl.SSHCommandEnv, script+" -F /dev/null")
	t.Setenv(ctl.SSHCirclectlEnv, exe)
	t.Setenv(asMainEnv, "1")                      // the remote circlectl is this binary
	t.Setenv("GORACE", "atexit_sleep_ms=10")      // -race binaries wait 1 s at exit
	t.Setenv(ctl.HostEnv, "ssh://nobody@ignored") // -H wins
	return argsLog
}

// Every command runs over ssh as it does on the socket: same output, same
// exit codes, the same backend calls.
func TestCommandsOverSSH(t *testing.T) {
	argsLog := fakeSSH(t)
	testCommands(t, func(sock string) []string {
		return []string{"-H", "ssh://alice@example.org:2222", "--socket", sock}
	})
	data, err := os.ReadFile(argsLog)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	exe, _ := os.Executable()
	want := "-F /dev/null -o ConnectTimeout=10 -l alice -p 2222 -- example.org " + exe + " --socket "
	if !strings.HasPrefix(first, want) || !strings.HasSuffix(first, " dial-stdio") {
		t.Errorf("ssh ran with %q, want %q...dial-stdio", first, want)
	}
}

// $CIRCLED_HOST selects the host when -H is not given; ssh's failures are
// exit 4 naming the host and quoting ssh's stderr.
func TestSSHHostEnvAndFailures(t *testing.T) {
	fakeSSH(t)
	f := ctltest.NewFake("web")
	sock := startDaemon(t, f)

	t.Setenv(ctl.HostEnv, "ssh://bob@h1")
	code, stdout, stderr := circlectl("--socket", sock, "list")
	if code != 0 || stdout != "web\n" {
		t.Errorf("list over $CIRCLED_HOST: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// No daemon on the host: the remote dial-stdio exits 4.
	missing := filepath.Join(testhelper.ShortDir(t), "none.sock")
	code, _, stderr = circlectl("--socket", missing, "status")
	want := "circlectl: daemon not reachable on ssh://bob@h1: ssh failed (exit status 4): circlectl: daemon not reachable on " + missing
	if code != exitUnreachable || !strings.HasPrefix(stderr, want) {
		t.Errorf("no remote daemon: exit %d, stderr %q; want 4, %q", code, stderr, want)
	}

	// No circlectl on the host.
	code, _, stderr = circlectl("-H", "ssh://h1?circlectl=/nonexistent/circlectl", "--socket", sock, "status")
	if code != exitUnreachable || !strings.Contains(stderr, "daemon not reachable on ssh://h1: ssh failed (exit status 127): ") ||
		!strings.Contains(stderr, "/nonexistent/circlectl") {
		t.Errorf("no remote circlectl: exit %d, stderr %q", code, stderr)
	}

	// ssh itself fails.
	bad := filepath.Join(t.TempDir(), "ssh")
	os.WriteFile(bad, []byte("#!/bin/sh\necho 'ssh: connect to host h1 port 22: Connection refused' >&2\nexit 255\n"), 0o755)
	t.Setenv(ctl.SSHCommandEnv, bad)
	code, stdout, stderr = circlectl("logs", "-f", "web")
	want = "circlectl: daemon not reachable on ssh://bob@h1: ssh failed (exit status 255): ssh: connect to host h1 port 22: Connection refused\n"
	if code != exitUnreachable || stdout != "" || stderr != want {
		t.Errorf("ssh fails: exit %d, stdout %q, stderr %q; want 4, %q", code, stdout, stderr, want)
	}

	// No ssh at all.
	t.Setenv(ctl.SSHCommandEnv, "/nonexistent/ssh")
	code, _, stderr = circlectl("status")
	if code != exitUnreachable || !strings.Contains(stderr, "daemon not reachable on ssh://bob@h1: ") {
		t.Errorf("no ssh: exit %d, stderr %q", code, stderr)
	}

	// A bad host is a usage error.
	for _, h := range []string{"tcp://h1:1", "ssh://", "ssh://h1/path", "ssh://u:pw@h1", "ssh://h1:0", "ssh://h1?x=1"} {
		code, _, stderr = circlectl("-H", h, "status")
		if code != exitUsage || !strings.Contains(stderr, "want ssh://[user@]host[:port]") {
			t.Errorf("-H %s: exit %d, stderr %q; want 2", h, code, stderr)
		}
	}
	// dial-stdio is local only.
	code, _, stderr = circlectl("-H", "ssh://h1", "dial-stdio")
	if code != exitUsage {
		t.Errorf("dial-stdio -H: exit %d, stderr %q; want 2", code, stderr)
	}
}

// logs -f over ssh: a line logged after following started arrives on its
// own; Ctrl-C exits 0 and ends the remote dial-stdio (the daemon's
// follower goes away).
func TestLogsFollowOverSSH(t *testing.T) {
	fakeSSH(t)
	f := ctltest.NewFake("web")
	sock := startDaemon(t, f)
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	out, done := logsF(t, ctx, f, sock, "-H", "ssh://h", "-n", "0", "web")
	f.Log("web", "stdout", "hello")
	testhelper.Eventually(t, 30*time.Second, "the new line, with nothing logged after it", func() bool { return out.String() == "web.1 | hello\n" })
	interrupt()
	r := waitExit(t, done, "Ctrl-C")
	if r.code != 0 || r.stderr != "" || r.stdout != "web.1 | hello\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	testhelper.Eventually(t, 30*time.Second, "the remote side to stop following", func() bool { return f.Followers() == 0 })
}

// logs -f over ssh exits 0 when the daemon stops: the remote dial-stdio
// ends, and so does ssh.
func TestLogsFollowOverSSHDaemonStops(t *testing.T) {
	fakeSSH(t)
	f := ctltest.NewFake("web")
	sock := filepath.Join(testhelper.ShortDir(t), "c.sock")
	ln, err := ctl.Listen(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(sctx, ln, ctl.NewHandler(f, nil)) }()

	out, done := logsF(t, context.Background(), f, sock, "-H", "ssh://h", "-n", "0", "web")
	f.Log("web", "stdout", "last")
	testhelper.Eventually(t, 30*time.Second, "the line", func() bool { return out.String() == "web.1 | last\n" })
	stop()
	r := waitExit(t, done, "the daemon stopped")
	if r.code != 0 || r.stderr != "" || r.stdout != "web.1 | last\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
