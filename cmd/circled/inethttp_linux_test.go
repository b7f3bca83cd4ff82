//go:build linux

package main

// Issue 18 §1/§3 against the real circled binary (built by TestMain in
// script_test.go): supervisord's [inet_http_server] (rpc2 over TCP behind
// basic auth), [supervisord] identifier, minfds and minprocs. Every check
// polls with a deadline; nothing sleeps to let something happen.

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// freeTCPAddr returns a loopback address nothing listens on right now.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// pyInet calls methods (no arguments) through xmlrpc.client over
// http://user:pass@addr/RPC2 and prints one JSON result per call.
const pyInet = `
import json, sys, xmlrpc.client
s = xmlrpc.client.ServerProxy(sys.argv[1])
for name in sys.argv[2:]:
    f = s
    for part in name.split("."):
        f = getattr(f, part)
    print(json.dumps(f()))
`

func TestInetHTTPServer(t *testing.T) {
	bin := supervisorctlBin(t)
	dir := t.TempDir()
	addr := freeTCPAddr(t)
	const user, pass = "alice", "s3cret-pw"
	sum := sha1.Sum([]byte(pass))
	conf := fmt.Sprintf(`[supervisord]
identifier = circle-inet-test

[inet_http_server]
port = %s
username = %s
password = {SHA}%s

[program:web]
command = sleep 1001
`, addr, user, hex.EncodeToString(sum[:]))
	p := startCircled(t, dir, conf)
	p.up()
	p.waitState("web", "active")
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.ctl("quit")
			p.exit()
		}
	})
	testhelper.Eventually(t, waitTimeout, "the inet_http_server log line", func() bool { return strings.Contains(p.out.String(), "inet_http_server") })

	// Debian's supervisorctl over TCP with the credentials.
	sconf := filepath.Join(t.TempDir(), "supervisorctl.conf")
	if err := os.WriteFile(sconf, []byte("[supervisorctl]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := sctl{t: t, bin: bin, args: []string{"-c", sconf, "-s", "http://" + addr, "-u", user, "-p", pass}}
	pid := p.livePIDs("web")
	s.expect(0, []string{"status"}, "web", "RUNNING", fmt.Sprintf("pid %d", pid[0]))
	s.expect(0, []string{"stop", "web"}, "web: stopped")
	if w := p.watcher("web"); w.State != "stopped" {
		t.Errorf("circlectl after supervisorctl stop web: %+v", w)
	}
	s.expect(0, []string{"start", "web"}, "web: started")
	p.waitState("web", "active")

	// A wrong password: supervisorctl is refused, and circled logs the
	// user and the remote address, never the password given.
	bad := sctl{t: t, bin: bin, args: []string{"-c", sconf, "-s", "http://" + addr, "-u", user, "-p", "wrong-pw-xyz"}}
	out, code := bad.run("status")
	if code == 0 || !strings.Contains(out, "401") && !strings.Contains(strings.ToLower(out), "authentication") {
		t.Errorf("supervisorctl with a wrong password: exit %d\n%s", code, out)
	}
	get := func(path, u, pw string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if u != "" {
			req.SetBasicAuth(u, pw)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if c, body := get("/RPC2", user, "wrong-pw-xyz"); c != http.StatusUnauthorized {
		t.Errorf("GET /RPC2 with a wrong password: %d %q", c, body)
	}
	if c, body := get("/RPC2", "", ""); c != http.StatusUnauthorized {
		t.Errorf("GET /RPC2 without credentials: %d %q", c, body)
	}
	logRe := regexp.MustCompile(`wrong username or password.*user=` + user + `.*remote=127\.0\.0\.1:\d+`)
	testhelper.Eventually(t, waitTimeout, "the wrong password logged", func() bool { return logRe.MatchString(p.out.String()) })
	if strings.Contains(p.out.String(), "wrong-pw-xyz") || strings.Contains(p.out.String(), pass) {
		t.Errorf("circled's log holds a password:\n%s", p.out)
	}
	// Only rpc2's paths: circle's JSON API is not served over TCP, even
	// with the right credentials.
	for _, path := range []string{"/", "/v1/status", "/status", "/watchers"} {
		if c, body := get(path, user, pass); c != http.StatusNotFound || strings.Contains(body, "{") {
			t.Errorf("GET %s over TCP: %d %q, want rpc2's plain 404", path, c, body)
		}
	}
	// POST /RPC2 with the right password works (405 for GET proves the
	// route); the identifier through Python's xmlrpc.client.
	if c, _ := get("/RPC2", user, pass); c != http.StatusMethodNotAllowed {
		t.Errorf("GET /RPC2 with credentials: %d, want 405", c)
	}
	if py, err := exec.LookPath("python3"); err != nil {
		t.Log("python3 missing: getIdentification through xmlrpc.client not checked")
	} else {
		script := filepath.Join(t.TempDir(), "inet.py")
		if err := os.WriteFile(script, []byte(pyInet), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, py, script, "http://"+user+":"+pass+"@"+addr+"/RPC2",
			"supervisor.getIdentification", "supervisor.getAPIVersion").CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		if got := strings.Fields(string(out)); len(got) != 2 || got[0] != `"circle-inet-test"` || got[1] != `"3.0"` {
			t.Errorf("getIdentification, getAPIVersion: %q", out)
		}
	}
	// The listener goes away with circled.
	p.quit()
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after circled stopped", addr)
	}
}

// A listener beyond loopback without credentials: circled refuses the
// config and does not start.
func TestInetHTTPBeyondLoopbackNeedsAuth(t *testing.T) {
	_, free, err := net.SplitHostPort(freeTCPAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"0.0.0.0:" + free, ":" + free, "192.0.2.1:9001"} {
		t.Run(port, func(t *testing.T) {
			dir := t.TempDir()
			p := startCircled(t, dir, "[inet_http_server]\nport = "+port+"\n\n[program:web]\ncommand = sleep 1001\n")
			if code := p.exit(); code != 1 {
				t.Fatalf("circled exited %d, want 1:\n%s", code, p.out)
			}
			out := p.out.String()
			if !strings.Contains(out, "username and a password are required") || !strings.Contains(out, "port") {
				t.Errorf("the error does not say why or name the key:\n%s", out)
			}
		})
	}
}

// limitsOf reads pid's soft and hard limit named name ("Max open files")
// from /proc/PID/limits.
func limitsOf(t *testing.T, pid int, name string) (soft, hard string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") {
			f := strings.Fields(strings.TrimPrefix(l, name))
			return f[0], f[1]
		}
	}
	t.Fatalf("no %q in /proc/%d/limits:\n%s", name, pid, b)
	return "", ""
}

func rlimit(t *testing.T, res int) syscall.Rlimit {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(res, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// canRaiseHard reports whether this process has CAP_SYS_RESOURCE (as
// circled, run by it, will): only then may a hard limit be raised.
func canRaiseHard(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CapEff:\s*([0-9a-f]+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no CapEff in /proc/self/status:\n%s", b)
	}
	caps, err := strconv.ParseUint(string(m[1]), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return caps&(1<<unix.CAP_SYS_RESOURCE) != 0
}

// minfds and minprocs raise circled's limits (the hard ones too when
// root and needed), as supervisord does.
func TestMinFDsMinProcsRaiseLimits(t *testing.T) {
	nofile := rlimit(t, syscall.RLIMIT_NOFILE)
	nproc := rlimit(t, unix.RLIMIT_NPROC)
	root := canRaiseHard(t)
	// With CAP_SYS_RESOURCE, above the hard limits (circled must raise both); otherwise
	// the hard limit itself (the soft one is raised to it).
	wantFDs, wantProcs := nofile.Max, nproc.Max
	if root {
		wantFDs = min(nofile.Max+1000, 1<<20)
		wantProcs = min(nproc.Max+1000, 1<<22)
	}
	if wantFDs > 1<<20 || wantProcs > 1<<22 {
		t.Skipf("SKIP: limits too high to raise within minfds/minprocs' range: nofile %d, nproc %d", nofile.Max, nproc.Max)
	}
	dir := t.TempDir()
	p := startCircled(t, dir, fmt.Sprintf("[supervisord]\nminfds = %d\nminprocs = %d\n\n[program:web]\ncommand = sleep 1001\n", wantFDs, wantProcs))
	p.up()
	pid := p.cmd.Process.Pid
	if soft, hard := limitsOf(t, pid, "Max open files"); soft != strconv.FormatUint(wantFDs, 10) || root && hard != soft {
		t.Errorf("circled's open files limit: soft %s hard %s, want %d", soft, hard, wantFDs)
	}
	soft, hard := limitsOf(t, pid, "Max processes")
	if s, _ := strconv.ParseUint(soft, 10, 64); soft != "unlimited" && s < wantProcs {
		t.Errorf("circled's process limit: soft %s hard %s, want at least %d", soft, hard, wantProcs)
	}
	if root && (soft != strconv.FormatUint(wantProcs, 10) || hard != soft) {
		t.Errorf("circled's process limit: soft %s hard %s, want both %d", soft, hard, wantProcs)
	}
	// The processes started after the raise inherit it.
	w := p.waitState("web", "active")
	if soft, _ := limitsOf(t, w.Processes[0].PID, "Max open files"); root && soft != strconv.FormatUint(wantFDs, 10) {
		t.Errorf("web's open files limit: soft %s, want %d", soft, wantFDs)
	}
	p.quit()
}

// minfds above a hard limit circled may not raise: it refuses to start,
// naming the key. CAP_SYS_RESOURCE, when the test has it, is taken away
// with setpriv.
func TestMinFDsImpossible(t *testing.T) {
	nofile := rlimit(t, syscall.RLIMIT_NOFILE)
	if nofile.Max >= 1<<20 {
		t.Skipf("SKIP: the hard open files limit (%d) is minfds' maximum already", nofile.Max)
	}
	var wrap []string
	if canRaiseHard(t) {
		sp, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("SKIP: setpriv is missing: cannot take CAP_SYS_RESOURCE away from circled")
		}
		wrap = []string{sp, "--bounding-set=-sys_resource", "--inh-caps=-sys_resource"}
	}
	dir := t.TempDir()
	ini := filepath.Join(dir, "supervisord.conf")
	if err := os.WriteFile(ini, []byte(fmt.Sprintf("[supervisord]\nminfds = %d\n\n[program:web]\ncommand = sleep 1001\n", nofile.Max+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(wrap, filepath.Join(binDir, "circled"), "-c", ini, "--socket", filepath.Join(dir, "c.sock"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("circled: %v, want exit 1:\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("minfds = %d", nofile.Max+1)) || !strings.Contains(string(out), "hard limit") {
		t.Errorf("the error does not name minfds and the hard limit:\n%s", out)
	}
	if strings.Contains(string(out), "circled started") {
		t.Errorf("circled started:\n%s", out)
	}
}

// startCircledVia is startCircled with circled run through wrap (a
// command that execs its arguments, keeping the pid).
func startCircledVia(t *testing.T, dir, cfg string, wrap ...string) *circledProc {
	t.Helper()
	ini := filepath.Join(dir, "supervisord.conf")
	if err := os.WriteFile(ini, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "cf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	p := &circledProc{t: t, out: &testhelper.SyncBuffer{}, socket: filepath.Join(sockDir, "c.sock"), done: make(chan struct{})}
	args := append(wrap, filepath.Join(binDir, "circled"), "-c", ini, "--socket", p.socket)
	p.cmd = exec.Command(args[0], args[1:]...)
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

// Soft limits below minfds/minprocs (and hard ones above) are raised
// without any privilege: circled started with a soft RLIMIT_NPROC of 150
// and minprocs = 300 runs with 300.
func TestMinProcsRaisesSoftLimit(t *testing.T) {
	pl, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("SKIP: prlimit (util-linux) is missing: cannot start circled with a low soft limit")
	}
	nproc := rlimit(t, unix.RLIMIT_NPROC)
	nofile := rlimit(t, syscall.RLIMIT_NOFILE)
	if nproc.Max < 300 || nofile.Max < 1024 {
		t.Skipf("SKIP: hard limits too low for the test: nproc %d, nofile %d", nproc.Max, nofile.Max)
	}
	p := startCircledVia(t, t.TempDir(), "[supervisord]\nminfds = 1024\nminprocs = 300\n\n[program:web]\ncommand = sleep 1001\n",
		pl, "--nproc=150:", "--nofile=256:", "--")
	p.up()
	if soft, _ := limitsOf(t, p.cmd.Process.Pid, "Max processes"); soft != "300" {
		t.Errorf("circled's soft process limit: %s, want 300 (minprocs)", soft)
	}
	if soft, _ := limitsOf(t, p.cmd.Process.Pid, "Max open files"); func() bool { n, _ := strconv.Atoi(soft); return n < 1024 }() {
		t.Errorf("circled's soft open files limit: %s, want at least 1024 (minfds)", soft)
	}
	if !strings.Contains(p.out.String(), "key=minprocs") {
		t.Errorf("no log line says minprocs raised the limit:\n%s", p.out)
	}
	w := p.waitState("web", "active")
	if soft, _ := limitsOf(t, w.Processes[0].PID, "Max processes"); soft != "300" {
		t.Errorf("web's soft process limit: %s, want 300 (inherited)", soft)
	}
	p.quit()
}
