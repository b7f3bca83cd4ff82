//go:build linux

package main

// Issue 13, points 1, 2 and 6, against the real circled and circlectl
// binaries (built by TestMain in script_test.go): files circled writes
// never follow a link planted by someone else, the pidfile cannot be
// turned against another file, and lost output is counted and said.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// circledProc is one circled run in the foreground.
type circledProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *testhelper.SyncBuffer // its stdout and stderr
	socket string
	done   chan struct{}
	code   int
}

// startCircled runs circled -c dir/circled.ini with cfg and args.
func startCircled(t *testing.T, dir, cfg string, args ...string) *circledProc {
	t.Helper()
	ini := filepath.Join(dir, "circled.ini")
	if err := os.WriteFile(ini, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "cf") // $TMPDIR/TestName... may be too long for a socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	p := &circledProc{t: t, out: &testhelper.SyncBuffer{}, socket: filepath.Join(sockDir, "c.sock"), done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, "circled"), append([]string{"-c", ini, "--socket", p.socket}, args...)...)
	p.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// exit waits (at most 20 s) for circled to exit and returns its code.
func (p *circledProc) exit() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(20 * time.Second):
		p.t.Fatalf("circled still running after 20s; output:\n%s", p.out)
		return -1
	}
}

// up waits until circled answers on its socket.
func (p *circledProc) up() {
	p.t.Helper()
	testhelper.Eventually(p.t, waitTimeout, "circled to answer", func() bool {
		select {
		case <-p.done:
			p.t.Fatalf("circled exited %d:\n%s", p.code, p.out)
		default:
		}
		_, err := p.ctl("version")
		return err == nil
	})
}

// ctl runs circlectl against this circled.
func (p *circledProc) ctl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(binDir, "circlectl"), append([]string{"--socket", p.socket}, args...)...)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("circlectl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

func (p *circledProc) mustCtl(args ...string) string {
	p.t.Helper()
	out, err := p.ctl(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// quit stops circled and waits for it to exit 0.
func (p *circledProc) quit() {
	p.t.Helper()
	p.mustCtl("quit")
	if code := p.exit(); code != 0 {
		p.t.Fatalf("circled exited %d:\n%s", code, p.out)
	}
}

// dropped sums dropped_bytes of watcher name in `circlectl status --json`.
func (p *circledProc) dropped(name string) int64 {
	p.t.Helper()
	var st ctl.Status
	if err := json.Unmarshal([]byte(p.mustCtl("status", "--json", name)), &st); err != nil {
		p.t.Fatal(err)
	}
	var n int64
	for _, w := range st.Watchers {
		for _, pr := range w.Processes {
			n += pr.DroppedBytes
		}
	}
	return n
}

// waitTimeout bounds the waits of these tests.
const waitTimeout = 20 * time.Second

// victim is a file circled must never write; intact reports whether its
// content, mode and owner are as made.
func victim(t *testing.T) (string, func() bool) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "authorized_keys")
	const content = "ssh-ed25519 AAAA root@host\n"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	fi0, _ := os.Stat(p)
	return p, func() bool {
		b, err := os.ReadFile(p)
		fi, err2 := os.Lstat(p)
		return err == nil && err2 == nil && string(b) == content && fi.Mode() == 0o600 &&
			fi.Sys().(*syscall.Stat_t).Uid == fi0.Sys().(*syscall.Stat_t).Uid
	}
}

const idleWatcher = "[watcher:idle]\ncmd = sleep 1000\n"

// A symbolic link at the pidfile path: circled refuses to start, the
// link's target keeps its content, and the link stays.
func TestPidfileSymlinkNotFollowed(t *testing.T) {
	tgt, intact := victim(t)
	dir := t.TempDir()
	pid := filepath.Join(dir, "circled.pid")
	os.Symlink(tgt, pid)
	p := startCircled(t, dir, idleWatcher, "--pidfile", pid)
	if code := p.exit(); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), "pidfile") || !strings.Contains(p.out.String(), "symbolic link") {
		t.Fatalf("error does not say why:\n%s", p.out)
	}
	if !intact() {
		t.Fatal("the link's target changed")
	}
	if fi, err := os.Lstat(pid); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was removed or replaced: %v %v", fi, err)
	}
}

// A FIFO at the pidfile path (with no reader, which used to block the
// open forever): circled exits 1 at once with a clear error.
func TestPidfileFIFODoesNotHang(t *testing.T) {
	dir := t.TempDir()
	pid := filepath.Join(dir, "circled.pid")
	if err := syscall.Mkfifo(pid, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startCircled(t, dir, idleWatcher, "--pidfile", pid)
	if code := p.exit(); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), "FIFO") {
		t.Fatalf("error does not say why:\n%s", p.out)
	}
}

// A regular file that does not hold a pid is not overwritten; a stale
// pidfile (a number) is.
func TestPidfileOtherContentNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	pid := filepath.Join(dir, "circled.pid")
	os.WriteFile(pid, []byte("important data\n"), 0o644)
	p := startCircled(t, dir, idleWatcher, "--pidfile", pid)
	if code := p.exit(); code != 1 || !strings.Contains(p.out.String(), "does not hold a pid") {
		t.Fatalf("exit %d, want 1 saying why:\n%s", code, p.out)
	}
	if b, _ := os.ReadFile(pid); string(b) != "important data\n" {
		t.Fatalf("file now holds %q", b)
	}
	os.WriteFile(pid, []byte("999999999\n"), 0o644)
	p = startCircled(t, dir, idleWatcher, "--pidfile", pid)
	p.up()
	if b, _ := os.ReadFile(pid); string(b) != strconv.Itoa(p.cmd.Process.Pid)+"\n" {
		t.Fatalf("stale pidfile holds %q, want circled's pid", b)
	}
	p.quit()
	if _, err := os.Lstat(pid); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pidfile not removed at exit: %v", err)
	}
}

// As root: a pidfile another user owns (planted in a shared directory,
// where they could later rewrite it to name any process) is refused.
func TestPidfileOfAnotherUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the pidfile belongs to nobody")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o1777)
	pid := filepath.Join(dir, "circled.pid")
	os.WriteFile(pid, []byte("1\n"), 0o644)
	if err := os.Chown(pid, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	p := startCircled(t, dir, idleWatcher, "--pidfile", pid)
	if code := p.exit(); code != 1 || !strings.Contains(p.out.String(), "belongs to uid 65534") {
		t.Fatalf("exit %d, want 1 saying why:\n%s", code, p.out)
	}
	if b, _ := os.ReadFile(pid); string(b) != "1\n" {
		t.Fatalf("file now holds %q", b)
	}
}

// A pidfile that no longer holds circled's pid at exit (replaced by
// another daemon's, or by anything else) is left alone.
func TestPidfileReplacedIsNotRemoved(t *testing.T) {
	dir := t.TempDir()
	pid := filepath.Join(dir, "circled.pid")
	p := startCircled(t, dir, idleWatcher, "--pidfile", pid)
	p.up()
	if b, _ := os.ReadFile(pid); string(b) != strconv.Itoa(p.cmd.Process.Pid)+"\n" {
		t.Fatalf("pidfile holds %q", b)
	}
	tmp := filepath.Join(dir, "other")
	os.WriteFile(tmp, []byte("12345\n"), 0o644)
	if err := os.Rename(tmp, pid); err != nil {
		t.Fatal(err)
	}
	p.quit()
	if b, err := os.ReadFile(pid); err != nil || string(b) != "12345\n" {
		t.Fatalf("replaced pidfile: %q %v", b, err)
	}
	if !strings.Contains(p.out.String(), "no longer holds pid") {
		t.Fatalf("circled did not say why it left the pidfile:\n%s", p.out)
	}
}

// circled's own logfile at a symbolic link: circled refuses to start, in
// the foreground and with --daemon (whose launcher opens it first); the
// target is untouched.
func TestLogfileSymlinkRefused(t *testing.T) {
	tgt, intact := victim(t)
	dir := t.TempDir()
	logfile := filepath.Join(dir, "circled.log")
	os.Symlink(tgt, logfile)
	cfg := "[circled]\nlogfile = " + logfile + "\n" + idleWatcher
	for _, args := range [][]string{nil, {"--daemon"}} {
		p := startCircled(t, dir, cfg, args...)
		if code := p.exit(); code != 1 {
			t.Fatalf("%v: exit %d, want 1:\n%s", args, code, p.out)
		}
		if !strings.Contains(p.out.String(), "logfile") || !strings.Contains(p.out.String(), "symbolic link") {
			t.Fatalf("%v: error does not say why:\n%s", args, p.out)
		}
		if !intact() {
			t.Fatalf("%v: the link's target changed", args)
		}
	}
}

// Issue 13's first attack end to end: a watcher running as nobody, whose
// log directory nobody owns, replaces app.log with a symbolic link to a
// root-only file and prints a line. Neither `circlectl reopen` nor a
// restart of circled follows the link: the file is unchanged, and the
// refused output shows in status --json (dropped_bytes) and in circled's
// log.
func TestWatcherLogSymlinkAttack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the watcher runs as nobody and circled as root")
	}
	secret, intact := victim(t)
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		os.Chmod(d, 0o755) // nobody must reach its log directory
	}
	logDir := filepath.Join(base, "logs")
	os.Mkdir(logDir, 0o755)
	if err := os.Chown(logDir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(logDir, "app.log")
	cfg := "[watcher:svc]\nuid = nobody\ngid = nogroup\ncmd = /bin/sh -c 'echo hello; while :; do " +
		"if [ -e " + logDir + "/go1 ]; then rm -f " + app + "; ln -s " + secret + " " + app + "; rm " + logDir + "/go1; fi; " +
		"if [ -e " + logDir + "/go2 ]; then echo ssh-ed25519 AAAA attacker; rm " + logDir + "/go2; fi; " +
		"sleep 0.01; done'\n" +
		"stdout_stream.class = FileStream\nstdout_stream.filename = " + app + "\n"
	trigger := func(name string) {
		t.Helper()
		os.WriteFile(filepath.Join(logDir, name), nil, 0o644)
		testhelper.Eventually(t, waitTimeout, name+" consumed", func() bool {
			_, err := os.Lstat(filepath.Join(logDir, name))
			return errors.Is(err, os.ErrNotExist)
		})
	}
	dir := t.TempDir()
	p := startCircled(t, dir, cfg)
	p.up()
	testhelper.Eventually(t, waitTimeout, "hello in app.log", func() bool {
		b, _ := os.ReadFile(app)
		return string(b) == "hello\n"
	})
	trigger("go1")
	p.mustCtl("reopen")
	trigger("go2")
	testhelper.Eventually(t, waitTimeout, "dropped_bytes in status --json", func() bool { return p.dropped("svc") > 0 })
	if !intact() {
		t.Fatal("the root-only file changed after reopen")
	}
	testhelper.Eventually(t, waitTimeout, "the refusal in circled's log", func() bool {
		return strings.Contains(p.out.String(), "symbolic link") && strings.Contains(p.out.String(), app)
	})
	p.quit()

	// A restart: the new circled opens app.log (still the link) for the
	// watcher's first line.
	p = startCircled(t, dir, cfg)
	p.up()
	testhelper.Eventually(t, waitTimeout, "dropped_bytes after restart", func() bool { return p.dropped("svc") > 0 })
	trigger("go2")
	if !intact() {
		t.Fatal("the root-only file changed after a restart")
	}
	p.quit()
}

// mountTmpfs mounts a tmpfs of size on a new directory (root only).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs to fill it")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes to a file in dir until the filesystem is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
}

// A watcher's FileStream on a full disk: the file holds whole lines only
// (no line glued to half of another), and every byte the watcher printed
// is either in the file or counted in dropped_bytes.
func TestFullDiskDropsWholeLinesAndCounts(t *testing.T) {
	mnt := mountTmpfs(t, "64k")
	dir := t.TempDir()
	out := filepath.Join(mnt, "app.log")
	done := filepath.Join(dir, "done")
	const lines = 2000
	// Lines of varying length: N<i> and i%97 y's.
	cfg := "[watcher:w]\ncmd = /bin/sh -c 'i=0; y=; while [ $i -lt " + strconv.Itoa(lines) + " ]; do " +
		"echo N$i $y; i=$((i+1)); y=${y}y; if [ ${#y} -ge 97 ]; then y=; fi; done; touch " + done + "; exec sleep 1000'\n" +
		"stdout_stream.class = FileStream\nstdout_stream.filename = " + out + "\n"
	var total int64
	for i := range lines {
		total += int64(len(strings.TrimSpace(fmt.Sprintf("N%d %s", i, strings.Repeat("y", i%97)))) + 1) // echo drops an empty last word
	}
	p := startCircled(t, dir, cfg)
	p.up()
	testhelper.Poll(t, waitTimeout, "the watcher's output written or dropped", func() (bool, string) {
		if _, err := os.Stat(done); err != nil {
			return false, "watcher not done"
		}
		fi, err := os.Stat(out)
		if err != nil {
			return false, err.Error()
		}
		d := p.dropped("w")
		return fi.Size()+d == total, fmt.Sprintf("%d in the file + %d dropped, want %d", fi.Size(), d, total)
	})
	b, _ := os.ReadFile(out)
	if len(b) == 0 || int64(len(b)) == total {
		t.Fatalf("file has %d of %d bytes: the disk did not fill", len(b), total)
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("file ends with a partial line: %q", b[max(0, len(b)-80):])
	}
	lineRE := regexp.MustCompile(`^N(\d+) ?(y*)$`)
	last := -1
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("broken line %q", l)
		}
		n, _ := strconv.Atoi(m[1])
		if n <= last || len(m[2]) != n%97 {
			t.Fatalf("line %q after N%d", l, last)
		}
		last = n
	}
	t.Logf("%d bytes in the file, %d dropped", len(b), p.dropped("w"))
	p.quit()
}

// circled's own logfile on a full disk: circled says so on stderr (with
// the bytes dropped), keeps the file to whole lines, and once the disk
// has room again says how much was lost, on stderr and in the logfile.
func TestLogfileFullDiskSaidOnStderr(t *testing.T) {
	mnt := mountTmpfs(t, "64k")
	dir := t.TempDir()
	logfile := filepath.Join(mnt, "circled.log")
	p := startCircled(t, dir, "[circled]\nlogfile = "+logfile+"\nloglevel = info\n"+idleWatcher)
	p.up()
	filler := fill(t, mnt)
	for i := 0; !strings.Contains(p.out.String(), "cannot write logfile "+logfile); i++ {
		if i == 200 {
			t.Fatalf("nothing on stderr after %d reopens:\n%s", i, p.out)
		}
		p.mustCtl("reopen") // logs "log files reopened"
	}
	if !regexp.MustCompile(`no space left on device \(\d+ bytes dropped so far\)`).MatchString(p.out.String()) {
		t.Fatalf("stderr:\n%s", p.out)
	}
	os.Remove(filler)
	p.mustCtl("reopen")
	testhelper.Eventually(t, waitTimeout, "the loss reported in the logfile", func() bool {
		b, _ := os.ReadFile(logfile)
		return strings.Contains(string(b), "could not be written for a while") &&
			strings.Contains(p.out.String(), "is writable again")
	})
	p.quit()
	b, _ := os.ReadFile(logfile)
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !strings.HasPrefix(l, "time=") || strings.Count(l, "time=") != 1 {
			t.Fatalf("broken line in the logfile: %q", l)
		}
	}
}
