//go:build unix

package watcher

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary stands in for a socket-activated program when
// CIRCLE_LISTEN_CHILD is set (init runs before TestMain, so no change to
// the shared helper is needed; the trampoline itself is left alone).
func init() {
	out := os.Getenv("CIRCLE_LISTEN_CHILD")
	if out == "" || len(os.Args) > 1 && os.Args[1] == trampolineArg {
		return
	}
	report := fmt.Sprintf("pid=%d\nuid=%d\nLISTEN_PID=%s\nLISTEN_FDS=%s\nLISTEN_FDNAMES=%s\n",
		os.Getpid(), os.Getuid(), os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"))
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		os.Exit(3)
	}
	if os.Getenv("CIRCLE_LISTEN_ACCEPT") != "" {
		ln, err := net.FileListener(os.NewFile(3, "listen"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		c, err := ln.Accept()
		if err != nil {
			os.Exit(5)
		}
		c.Write([]byte("hello from fd 3"))
		c.Close()
	}
	os.Exit(0)
}

func readReport(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		m[k] = v
	}
	return m
}

// A real child gets the socket as descriptor 3 and systemd's
// socket-activation variables, LISTEN_PID being its own pid (set by the
// trampoline just before exec), and accepts a connection on fd 3.
func TestListenFDs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := filepath.Join(t.TempDir(), "report")
	spec := Spec{Name: "sock", Umask: -1, Files: []*os.File{f}, ListenNames: []string{"web"}}
	env := []string{"PATH=" + os.Getenv("PATH"), "CIRCLE_LISTEN_CHILD=" + out, "CIRCLE_LISTEN_ACCEPT=1", "LISTEN_PID=1", "LISTEN_FDS=9"}
	cmd, err := buildCmd(spec, 1, []string{os.Args[0]}, env, "")
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(conn)
	conn.Close()
	if err != nil || string(got) != "hello from fd 3" {
		t.Errorf("read %q, %v", got, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v; stderr %s", err, stderr.String())
	}
	r := readReport(t, out)
	if r["LISTEN_PID"] != strconv.Itoa(cmd.Process.Pid) || r["pid"] != r["LISTEN_PID"] {
		t.Errorf("LISTEN_PID %s, the child's pid %s (started as %d)", r["LISTEN_PID"], r["pid"], cmd.Process.Pid)
	}
	if r["LISTEN_FDS"] != "1" || r["LISTEN_FDNAMES"] != "web" {
		t.Errorf("report %q", r)
	}
}

// Files without names: descriptors only, no socket-activation variables,
// and no trampoline.
func TestFilesWithoutNames(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spec := Spec{Name: "x", Umask: -1, Files: []*os.File{f, f}}
	cmd, err := buildCmd(spec, 1, []string{"/bin/true"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmd.ExtraFiles) != 2 || cmd.Path != "/bin/true" || strings.Contains(strings.Join(cmd.Env, " "), "LISTEN_") {
		t.Errorf("cmd %v extra %d env %q", cmd.Args, len(cmd.ExtraFiles), cmd.Env)
	}
	spec.ListenNames = []string{"one"}
	if _, err := buildCmd(spec, 1, []string{"/bin/true"}, nil, ""); err == nil {
		t.Error("1 name for 2 files accepted")
	}
	spec.ListenNames = []string{"a:b", "c"}
	if _, err := buildCmd(spec, 1, []string{"/bin/true"}, nil, ""); err == nil {
		t.Error("a name with ':' accepted")
	}
}

// Join: the child writes its own pid into each directory's cgroup.procs
// before it execs (a plain file stands in for cgroupfs here), then takes
// its user; a directory it cannot join fails the spawn with exit 127 and
// the reason on stderr, before the program runs.
func TestJoinViaTrampoline(t *testing.T) {
	base := t.TempDir()
	dirs := []string{filepath.Join(base, "memory"), filepath.Join(base, "pids")}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The child may run as nobody: it writes its report in a directory
	// of its own that it can reach, from /bin/sh ($$ is the pid the
	// trampoline had).
	open, err := os.MkdirTemp("", "circle-join-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(open, "report")
	child := func(out string) []string {
		return []string{"/bin/sh", "-c", `printf 'pid=%s\nuid=%s\n' $$ "$(id -u)" > ` + out}
	}
	var gotWID int
	doneCalls := 0
	spec := Spec{Name: "lim", Umask: -1, Join: func(wid int) ([]string, func(), error) {
		gotWID = wid
		return dirs, func() { doneCalls++ }, nil
	}}
	if os.Getuid() == 0 {
		nobody := 65534
		spec.UID, spec.GID, spec.Groups = &nobody, &nobody, []int{}
	}
	cmd, err := buildCmd(spec, 7, child(out), []string{"PATH=/usr/bin:/bin"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if gotWID != 7 {
		t.Errorf("Join got wid %d", gotWID)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v; stderr %s", err, stderr.String())
	}
	r := readReport(t, out)
	for _, d := range dirs {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if string(b) != r["pid"] || string(b) != strconv.Itoa(cmd.Process.Pid) {
			t.Errorf("%s/cgroup.procs = %q, the child is %s", d, b, r["pid"])
		}
	}
	if os.Getuid() == 0 && r["uid"] != "65534" {
		t.Errorf("the child runs as uid %s, want 65534 (after joining)", r["uid"])
	}
	if doneCalls != 0 {
		t.Errorf("done called %d times by buildCmd for a process that started", doneCalls)
	}

	// A directory that cannot be joined.
	missing := filepath.Join(base, "missing")
	spec.Join = func(int) ([]string, func(), error) { return []string{missing}, nil, nil }
	cmd, err = buildCmd(spec, 1, child(out+".2"), []string{"PATH=/usr/bin:/bin"}, "")
	if err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	cmd.Stderr = &stderr
	err = cmd.Run()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 127 || !strings.Contains(stderr.String(), "joining cgroup "+missing) {
		t.Errorf("exit %v, stderr %q", err, stderr.String())
	}
	if _, err := os.Stat(out + ".2"); err == nil {
		t.Error("the program ran although joining failed")
	}

	// Join's own error fails buildCmd.
	spec.Join = func(int) ([]string, func(), error) { return nil, nil, fmt.Errorf("no controller") }
	if _, err := buildCmd(spec, 1, []string{os.Args[0]}, nil, ""); err == nil || !strings.Contains(err.Error(), "no controller") {
		t.Errorf("buildCmd: %v", err)
	}
}
