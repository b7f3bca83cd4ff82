//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// The black-box test of remote control: a real OpenSSH server (Debian's
// openssh-server) on 127.0.0.1 with a generated host key, a test client
// key authorized for root, and a real circled; circlectl -H ssh://... runs
// the real ssh, which runs the built circlectl's dial-stdio on the
// "remote" side.
func TestSSHRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sshd and a real circled; skipped with -short")
	}
	needSSHD(t)
	bin := buildBinaries(t)
	s := startSSHD(t, bin)
	t.Setenv(ctl.SSHCommandEnv, "ssh -F "+s.clientConfig)
	t.Setenv(ctl.SSHCirclectlEnv, "")
	t.Setenv(ctl.HostEnv, "")

	// A real circled: "echo" prints what the test writes to its FIFO,
	// "sleeper" only runs.
	dir := testhelper.ShortDir(t)
	sock := filepath.Join(dir, "c.sock")
	fifo := filepath.Join(dir, "in.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "echo.sh")
	writeFile(t, script, "#!/bin/sh\nexec cat <> "+fifo+"\n", 0o755)
	ini := filepath.Join(dir, "circled.ini")
	writeFile(t, ini, "[circled]\nsocket = "+sock+"\n\n[watcher:echo]\ncmd = "+script+
		"\n\n[watcher:sleeper]\ncmd = sleep 1017\n", 0o600)
	startCircled(t, filepath.Join(bin, "circled"), ini, sock)

	remote := filepath.Join(bin, "circlectl")
	host := fmt.Sprintf("ssh://root@127.0.0.1:%d", s.port)
	withPath := host + "?circlectl=" + remote
	ok := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := circlectl(args...)
		if code != 0 || stderr != "" {
			t.Fatalf("circlectl %s: exit %d\nstdout: %s\nstderr: %s\nsshd: %s", strings.Join(args, " "), code, stdout, stderr, s.log)
		}
		return stdout
	}

	t.Run("status", func(t *testing.T) {
		out := ok("-H", withPath, "--socket", sock, "status")
		for _, re := range []string{`(?m)^NAME +STATE `, `(?m)^echo +active +\d+ `, `(?m)^sleeper +active +\d+ `} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("status over ssh: %q does not match %s", out, re)
			}
		}
	})

	t.Run("stop and start", func(t *testing.T) {
		if out := ok("-H", withPath, "-c", ini, "stop", "sleeper"); out != "sleeper: stopped\n" {
			t.Errorf("stop: %q", out)
		}
		if out := ok("-H", withPath, "-c", ini, "status", "--json", "sleeper"); !strings.Contains(out, `"name":"sleeper","state":"stopped"`) {
			t.Errorf("status after stop: %s", out)
		}
		if out := ok("-H", withPath, "-c", ini, "start", "sleeper"); out != "sleeper: started\n" {
			t.Errorf("start: %q", out)
		}
		if out := ok("-H", withPath, "-c", ini, "status", "--json", "sleeper"); !strings.Contains(out, `"name":"sleeper","state":"active"`) {
			t.Errorf("status after start: %s", out)
		}
	})

	// circlectl on the remote PATH (sshd's SetEnv), the host from
	// $CIRCLED_HOST.
	t.Run("remote PATH and CIRCLED_HOST", func(t *testing.T) {
		t.Setenv(ctl.HostEnv, host)
		if out := ok("--socket", sock, "list"); out != "echo\nsleeper\n" {
			t.Errorf("list: %q", out)
		}
	})

	t.Run("logs -f", func(t *testing.T) {
		in, err := os.OpenFile(fifo, os.O_RDWR, 0) // never blocks, whether echo has it open yet or not
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		ctx, interrupt := context.WithCancel(context.Background())
		defer interrupt()
		out, errb := &testhelper.SyncBuffer{}, &testhelper.SyncBuffer{}
		done := make(chan result, 1)
		go func() {
			code := run(ctx, []string{"-H", withPath, "--socket", sock, "logs", "-f", "-n", "0", "echo"}, out, errb)
			done <- result{code, out.String(), errb.String()}
		}()
		// With -n 0, a line shows only if it was logged after the daemon
		// started following: write one until one arrives (following
		// starts once ssh has connected).
		deadline := time.Now().Add(30 * time.Second)
		for i := 1; !strings.Contains(out.String(), "marker-"); i++ {
			if time.Now().After(deadline) {
				t.Fatalf("no line arrived in 30 s; stdout %q, stderr %q\nsshd: %s", out.String(), errb.String(), s.log)
			}
			select {
			case r := <-done:
				t.Fatalf("logs -f ended: %+v", r)
			default:
			}
			fmt.Fprintf(in, "marker-%d\n", i)
			next := time.Now().Add(500 * time.Millisecond)
			for !strings.Contains(out.String(), "marker-") && time.Now().Before(next) {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if !regexp.MustCompile(`^(echo\.1 \| marker-\d+\n)+$`).MatchString(out.String()) {
			t.Errorf("logs -f printed %q", out.String())
		}
		interrupt()
		select {
		case r := <-done:
			if r.code != 0 || r.stderr != "" {
				t.Errorf("logs -f after Ctrl-C: exit %d, stderr %q", r.code, r.stderr)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("logs -f did not exit after Ctrl-C")
		}
	})

	// Failures are exit 4, naming the host, with ssh's stderr.
	t.Run("failures", func(t *testing.T) {
		wrong := freePort(t)
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"-H", fmt.Sprintf("ssh://root@127.0.0.1:%d?circlectl=%s", wrong, remote), "--socket", sock, "status"},
				fmt.Sprintf("circlectl: daemon not reachable on ssh://root@127.0.0.1:%d: ssh failed (exit status 255): ssh: connect to host 127.0.0.1 port %d: Connection refused", wrong, wrong)},
			{[]string{"-H", fmt.Sprintf("ssh://nobody@127.0.0.1:%d?circlectl=%s", s.port, remote), "--socket", sock, "status"},
				fmt.Sprintf("circlectl: daemon not reachable on ssh://nobody@127.0.0.1:%d: ssh failed (exit status 255): nobody@127.0.0.1: Permission denied (publickey)", s.port)},
			{[]string{"-H", host + "?circlectl=/nonexistent/circlectl", "--socket", sock, "status"},
				"circlectl: daemon not reachable on " + host + ": ssh failed (exit status 127): "},
			{[]string{"-H", withPath, "--socket", dir + "/none.sock", "logs", "-f", "echo"},
				"circlectl: daemon not reachable on " + host + ": ssh failed (exit status 4): circlectl: daemon not reachable on " + dir + "/none.sock: no such file or directory"},
		}
		for _, tt := range tests {
			code, stdout, stderr := circlectl(tt.args...)
			if code != exitUnreachable || stdout != "" || !strings.HasPrefix(stderr, tt.want) {
				t.Errorf("circlectl %s: exit %d, stdout %q\nstderr %q\nwant 4 and %q", strings.Join(tt.args, " "), code, stdout, stderr, tt.want)
			}
		}
	})
}

// needSSHD skips the test unless it runs as root with OpenSSH installed,
// installing it with packaging/test-deps-ssh.sh when missing.
func needSSHD(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test's sshd logs in as root")
	}
	_, errSSH := exec.LookPath("ssh")
	_, errKeygen := exec.LookPath("ssh-keygen")
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil && errSSH == nil && errKeygen == nil {
		return
	}
	cmd := exec.Command("../../packaging/test-deps-ssh.sh")
	out, err := cmd.CombinedOutput()
	t.Logf("packaging/test-deps-ssh.sh: %s", out)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 2:
		t.Skipf("no sshd: %s", strings.TrimSpace(string(out)))
	case err != nil:
		t.Fatalf("packaging/test-deps-ssh.sh: %v", err)
	}
}

// buildBinaries builds circled and circlectl into a directory root and
// sshd can use.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := testhelper.ShortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"circled", "circlectl"} {
		cmd := exec.Command("go", "build", "-race", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = filepath.Join("..", "..") // the module root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
	}
	return dir
}

type sshd struct {
	port         int
	clientConfig string
	log          *testhelper.SyncBuffer
}

// startSSHD runs /usr/sbin/sshd -D on 127.0.0.1 with a new host key,
// accepting a new client key for root, with bin first on the sessions'
// PATH, until the test ends.
func startSSHD(t *testing.T, bin string) *sshd {
	t.Helper()
	dir := testhelper.ShortDir(t)
	for _, key := range []string{"host_key", "id"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "circle-test", "-f", filepath.Join(dir, key)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "id.pub"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "authorized_keys_root"), string(pub), 0o600)
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sshd_config")
	writeFile(t, cfg, strings.Join([]string{
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(dir, "host_key"),
		"PidFile none",
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys_%u"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"StrictModes no",
		"UsePAM no",
		"SetEnv PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin GORACE=atexit_sleep_ms=10",
		"",
	}, "\n"), 0o600)
	s := &sshd{port: freePort(t), clientConfig: filepath.Join(dir, "ssh_config"), log: &testhelper.SyncBuffer{}}
	writeFile(t, s.clientConfig, strings.Join([]string{
		"Host *",
		"  IdentityFile " + filepath.Join(dir, "id"),
		"  IdentitiesOnly yes",
		"  IdentityAgent none",
		"  StrictHostKeyChecking no",
		"  UserKnownHostsFile /dev/null",
		"  GlobalKnownHostsFile /dev/null",
		"  BatchMode yes",
		"  LogLevel ERROR",
		"",
	}, "\n"), 0o600)

	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg, "-p", strconv.Itoa(s.port))
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	// Ready when it greets.
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", s.log)
		default:
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), time.Second); err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "SSH-") {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not answer on port %d: %s", s.port, s.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startCircled runs circled -c ini until the test ends and waits until
// every watcher is active.
func startCircled(t *testing.T, circled, ini, sock string) {
	t.Helper()
	log := &testhelper.SyncBuffer{}
	cmd := exec.Command(circled, "-c", ini)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	c := ctl.NewClient(sock)
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("circled exited: %s", log)
		default:
		}
		st, err := c.Status(context.Background(), nil)
		active := err == nil && len(st.Watchers) > 0
		for _, w := range st.Watchers {
			active = active && w.State == "active" && len(w.Processes) > 0 && w.Processes[0].PID > 0
		}
		if active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("circled not ready: %+v, %v\n%s", st, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePort is a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}
