package watcher

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// pidsV1 is the cgroup v1 pids hierarchy the test uses, when writable.
const pidsV1 = "/sys/fs/cgroup/pids"

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// When the children fill a pids cgroup that circled shares with them
// (pids.max counts threads too), spawns fail with EAGAIN and back off
// like any spawn error, and circled itself never dies for want of a
// thread ("pthread_create failed", "fatal error: newosproc"): it creates
// spare threads at start (issue 13 point 10). The real daemon runs in a
// pids cgroup of 60 with 200 processes wanted, and answers a burst of
// status requests, which need threads.
func TestCircledSurvivesFullPidsCgroup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs circled")
	}
	cg := filepath.Join(pidsV1, fmt.Sprintf("circle-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("no writable cgroup v1 pids hierarchy at %s: %v", pidsV1, err)
	}
	t.Cleanup(func() {
		// Whatever is left in it is ours.
		for range 100 {
			b, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
			pids := strings.Fields(string(b))
			if len(pids) == 0 {
				break
			}
			for _, p := range pids {
				if n, err := strconv.Atoi(p); err == nil {
					syscall.Kill(n, syscall.SIGKILL)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		os.Remove(cg)
	})
	if err := os.WriteFile(filepath.Join(cg, "pids.max"), []byte("60"), 0o644); err != nil {
		t.Skipf("cannot set pids.max: %v", err)
	}
	dir := t.TempDir()
	for _, name := range []string{"circled", "circlectl"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = filepath.Join("..") // the module root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
	}
	sock := filepath.Join(dir, "s.sock")
	ini := filepath.Join(dir, "c.ini")
	os.WriteFile(ini, []byte("[circled]\nsocket = "+sock+"\n\n[watcher:s]\ncmd = sleep 100042\nnumprocesses = 200\n"), 0o644)
	var out lockedBuf
	d := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" -c "$3"`, "sh", cg, filepath.Join(dir, "circled"), ini)
	d.Stdout, d.Stderr = &out, &out
	d.Env = append(os.Environ(), "CIRCLED_SOCKET="+sock)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	dead := func() bool {
		select {
		case err := <-exited:
			exited <- err
			return true
		default:
			return false
		}
	}
	t.Cleanup(func() {
		if !dead() {
			d.Process.Kill()
			<-exited
		}
	})
	ctl := func(args ...string) ([]byte, error) {
		c := exec.Command(filepath.Join(dir, "circlectl"), args...)
		c.Env = append(os.Environ(), "CIRCLED_SOCKET="+sock)
		return c.CombinedOutput()
	}
	testhelper.Eventually(t, 30*time.Second, "spawns failing with EAGAIN", func() bool {
		return dead() || strings.Contains(out.String(), "resource temporarily unavailable")
	})
	for round := range 5 {
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() { defer wg.Done(); ctl("status", "--json") }()
		}
		wg.Wait()
		if dead() {
			t.Fatalf("circled died in a full pids cgroup (round %d):\n%s", round, tail(out.String()))
		}
	}
	st, err := ctl("status")
	if err != nil || !bytes.Contains(st, []byte("backoff")) || !bytes.Contains(st, []byte("resource temporarily unavailable")) {
		t.Fatalf("status: %v\n%s\nlog:\n%s", err, st, tail(out.String()))
	}
	if b, err := ctl("quit"); err != nil {
		t.Fatalf("quit: %v %s", err, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("circled: %v\n%s", err, tail(out.String()))
		}
	case <-ctx.Done():
		t.Fatal("circled did not stop")
	}
	for _, bad := range []string{"fatal error", "pthread_create", "newosproc"} {
		if strings.Contains(out.String(), bad) {
			t.Fatalf("circled's output has %q:\n%s", bad, tail(out.String()))
		}
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
