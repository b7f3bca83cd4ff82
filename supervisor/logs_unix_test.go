//go:build unix

package supervisor

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuf is an io.Writer tests can read while it is written.
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

// `logs -f` sees a new line within 100 ms, and ends when the watcher is
// removed.
func TestLogsFollowLatencyAndEnd(t *testing.T) {
	dir := t.TempDir()
	trigger := filepath.Join(dir, "go")
	// The child prints a line each time the trigger file appears.
	path := writeConfig(t, dir, "[watcher:talk]\ncmd = /bin/sh -c 'while :; do if [ -e "+trigger+" ]; then rm "+trigger+"; echo ping $(date +%s%N); fi; sleep 0.01; done'\n"+
		"stdout_stream.class = null\n[watcher:other]\ncmd = sleep 1000\n")
	s, _ := newSup(t, path)
	eventually(t, 5*time.Second, "active", s.AllActive)
	var out lockedBuf
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Logs(ctx, "talk", 0, true, "", &out) }()
	for i := 0; i < 5; i++ {
		before := strings.Count(out.String(), "ping")
		if err := os.WriteFile(trigger, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		eventually(t, 5*time.Second, "the line", func() bool { return strings.Count(out.String(), "ping") > before })
		// The child polls its trigger every 10 ms: allow that on top of 100 ms.
		if el := time.Since(start); el > 110*time.Millisecond {
			t.Errorf("line %d reached the follower after %s", i, el)
		}
	}
	if !strings.Contains(out.String(), "talk.1 | ping ") {
		t.Fatalf("output = %q", out.String())
	}
	// Removing the watcher (a reload without it) ends the follow.
	writeConfig(t, dir, "[watcher:other]\ncmd = sleep 1000\n")
	if _, err := s.ReloadConfig(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end when its watcher was removed")
	}
}

// After an external `mv` of the file, reopen makes circled write a fresh
// one at the configured path.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "w.log")
	trigger := filepath.Join(dir, "go")
	path := writeConfig(t, dir, "[watcher:w]\ncmd = /bin/sh -c 'i=0; while :; do if [ -e "+trigger+" ]; then rm "+trigger+"; i=$((i+1)); echo line $i; fi; sleep 0.01; done'\n"+
		"stdout_stream.class = FileStream\nstdout_stream.filename = "+out+"\n")
	s, _ := newSup(t, path)
	eventually(t, 5*time.Second, "active", s.AllActive)
	next := func(want string, file string) {
		os.WriteFile(trigger, nil, 0o644)
		eventually(t, 5*time.Second, want+" in "+file, func() bool {
			b, _ := os.ReadFile(file)
			return strings.Contains(string(b), want)
		})
	}
	next("line 1\n", out)
	if err := os.Rename(out, out+".1"); err != nil {
		t.Fatal(err)
	}
	next("line 2\n", out+".1") // still the old file until reopen
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	next("line 3\n", out)
	if b, _ := os.ReadFile(out); string(b) != "line 3\n" {
		t.Fatalf("fresh file = %q", b)
	}
}

// compress = true leaves valid .gz backups. (One supervisor per test: two
// reapers in one process would steal each other's exit statuses.)
func TestCompressedBackupsAreValid(t *testing.T) {
	gzdir := t.TempDir()
	gzout := filepath.Join(gzdir, "c.log")
	gzpath := writeConfig(t, gzdir, "[watcher:c]\nrespawn = false\ncmd = seq 1 400000\n"+
		"stdout_stream.class = FileStream\nstdout_stream.filename = "+gzout+"\nstdout_stream.max_bytes = 1MB\nstdout_stream.compress = true\n")
	s2, _ := newSup(t, gzpath)
	var gzs []string
	eventually(t, 20*time.Second, "compressed backups", func() bool {
		gzs, _ = filepath.Glob(filepath.Join(gzdir, "c-*.log.gz"))
		// lumberjack removes a backup once its .gz is complete.
		plain, _ := filepath.Glob(filepath.Join(gzdir, "c-*.log"))
		return state(s2, "c") == "stopped" && len(gzs) >= 2 && len(plain) == 0
	})
	for _, g := range gzs {
		f, err := os.Open(g)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		f.Close()
	}
}

// A flooding watcher never slows the control path: status answers fast
// throughout.
func TestFloodDoesNotBlockStatus(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "[watcher:flood]\ncmd = yes flooding-the-output-as-fast-as-possible\n"+
		"stdout_stream.class = FileStream\nstdout_stream.filename = "+filepath.Join(dir, "flood.log")+
		"\nstdout_stream.max_bytes = 8MB\nstdout_stream.backup_count = 2\n[watcher:calm]\ncmd = sleep 1000\n")
	s, _ := newSup(t, path)
	eventually(t, 5*time.Second, "active", s.AllActive)
	var worst time.Duration
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		start := time.Now()
		if _, _, err := s.Status(nil); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
		time.Sleep(10 * time.Millisecond) // pacing between samples, not synchronisation
	}
	if worst > 100*time.Millisecond {
		t.Fatalf("slowest status during the flood took %s", worst)
	}
}

// openFDsTo counts circled's (this process's) descriptors open on path.
func openFDsTo(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == path {
			n++
		}
	}
	return n
}

// A reload that removes a FileStream watcher closes its log file (it
// used to stay open until shutdown), after the watcher's last line is
// in it; the file of a watcher that stays is left alone.
func TestReloadClosesRemovedWatchersFiles(t *testing.T) {
	dir := t.TempDir()
	gone, kept := filepath.Join(dir, "gone.log"), filepath.Join(dir, "kept.log")
	watchers := func(withGone bool) string {
		c := "[watcher:kept]\ncmd = /bin/sh -c 'echo kept; exec sleep 1000'\nstdout_stream.class = FileStream\nstdout_stream.filename = " + kept + "\n"
		if withGone {
			c += "[watcher:gone]\ncmd = /bin/sh -c 'echo hello; exec sleep 1000'\nstdout_stream.class = FileStream\nstdout_stream.filename = " + gone + "\n"
		}
		return c
	}
	path := writeConfig(t, dir, watchers(true))
	s, _ := newSup(t, path)
	eventually(t, 5*time.Second, "both files written and open", func() bool {
		a, _ := os.ReadFile(gone)
		b, _ := os.ReadFile(kept)
		return string(a) == "hello\n" && string(b) == "kept\n" && openFDsTo(t, gone) == 1 && openFDsTo(t, kept) == 1
	})
	writeConfig(t, dir, watchers(false))
	sum, err := s.ReloadConfig(context.Background())
	if err != nil || len(sum.Removed) != 1 {
		t.Fatalf("reload: %v %+v", err, sum)
	}
	if n := openFDsTo(t, gone); n != 0 {
		t.Fatalf("%d descriptors still open on the removed watcher's log file", n)
	}
	if n := openFDsTo(t, kept); n != 1 {
		t.Fatalf("%d descriptors open on the kept watcher's log file, want 1", n)
	}
	if b, _ := os.ReadFile(gone); string(b) != "hello\n" {
		t.Fatalf("removed watcher's file holds %q", b)
	}
}
