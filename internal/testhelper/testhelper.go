package testhelper

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// pollEvery is how often Eventually and Poll re-check.
const pollEvery = 5 * time.Millisecond

// Eventually calls cond until it returns true; after d it fails the test
// with "timed out after d waiting for what".
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	Poll(t, d, what, func() (bool, string) { return cond(), "" })
}

// Poll is Eventually for a cond that also describes what it saw: the
// last non-empty description is in the failure.
func Poll(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	ok, _ := Wait(d, func() (bool, string) {
		ok, desc := cond()
		if desc != "" {
			last = desc
		}
		return ok, desc
	})
	if !ok {
		if last != "" {
			what += " (last: " + last + ")"
		}
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// Wait calls cond until it returns true or d passes, without failing
// anything: it returns cond's last answer (whether it held, and its
// description).
func Wait(d time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(d)
	for {
		ok, desc := cond()
		if ok || time.Now().After(deadline) {
			return ok, desc
		}
		time.Sleep(pollEvery)
	}
}

// SyncBuffer is a bytes.Buffer safe to read while another goroutine (a
// child's output copier) writes to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ShortDir is a fresh directory with a short path, removed when the test
// ends: unix socket paths are limited to about 104 bytes and t.TempDir()
// can exceed that.
func ShortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "circle")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Python3 is python3's interpreter itself (sys.executable), not a wrapper
// such as a pyenv shim: bash, then pyenv exec and its helpers cost a
// second or two per start on a loaded machine, all of it inside a
// watchdog period or a ready.timeout of the test that starts it. It is
// the python3 found in PATH when that cannot say; an error when there is
// none.
var Python3 = sync.OnceValues(func() (string, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return "", err
	}
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if exe := strings.TrimSpace(string(out)); err == nil && exe != "" {
		return exe, nil
	}
	return py, nil
})
