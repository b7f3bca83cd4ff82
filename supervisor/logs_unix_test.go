//go:build unix

package supervisor

import (
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
	"github.com/circle-supervisor/circle/supervisor/config"
)

// `logs -f` sees a new line within 100 ms, and ends when the watcher is
// removed.
func TestLogsFollowLatencyAndEnd(t *testing.T) {
	dir := t.TempDir()
	trigger := filepath.Join(dir, "go")
	// The child prints a line each time the trigger file appears.
	path := writeConfig(t, dir, "[watcher:talk]\ncmd = /bin/sh -c 'while :; do if [ -e "+trigger+" ]; then rm "+trigger+"; echo ping $(date +%s%N); fi; sleep 0.01; done'\n"+
		"stdout_stream.class = null\n[watcher:other]\ncmd = sleep 1000\n")
	s, _ := newSup(t, path)
	testhelper.Eventually(t, 20*time.Second, "active", allActive(s))
	var out testhelper.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Logs(ctx, "talk", 0, true, "", &out) }()
	for i := 0; i < 5; i++ {
		before := strings.Count(out.String(), "ping")
		if err := os.WriteFile(trigger, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		// The next trigger is written only once this line arrived, so a
		// follower that is not woken by each line on its own times out.
		testhelper.Eventually(t, 20*time.Second, "the line", func() bool { return strings.Count(out.String(), "ping") > before })
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
	testhelper.Eventually(t, 20*time.Second, "active", allActive(s))
	next := func(want string, file string) {
		os.WriteFile(trigger, nil, 0o644)
		testhelper.Eventually(t, 20*time.Second, want+" in "+file, func() bool {
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
	// About 230 kB through max_bytes = 64KB: three backups. (With 2.7 MB
	// through 1MB the backups, compressed one after the other by a -race
	// gzip, took about 2 s each at a load of 16 on 2 cores: all of them
	// took 20-22 s, past the 20 s the test allowed.)
	gzpath := writeConfig(t, gzdir, "[watcher:c]\nrespawn = false\ncmd = seq 1 40000\n"+
		"stdout_stream.class = FileStream\nstdout_stream.filename = "+gzout+"\nstdout_stream.max_bytes = 64KB\nstdout_stream.compress = true\n")
	s2, _ := newSup(t, gzpath)
	var gzs []string
	testhelper.Eventually(t, 60*time.Second, "compressed backups", func() bool {
		gzs, _ = filepath.Glob(filepath.Join(gzdir, "c-*.log.gz"))
		// A backup is removed once its .gz is complete.
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
	testhelper.Eventually(t, 20*time.Second, "active", allActive(s))
	// A status stuck behind the endless flood would never return. No
	// tight bound: a loaded 2-core machine running -race, which the flood
	// loads more, can exceed any; 20 s fails only a status that is stuck.
	// The slowest is logged.
	var worst time.Duration
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		errc := make(chan error, 1)
		t0 := time.Now()
		go func() { _, _, err := s.Status(nil); errc <- err }()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
			worst = max(worst, time.Since(t0))
		case <-time.After(20 * time.Second):
			t.Fatal("status blocked during the flood")
		}
		time.Sleep(10 * time.Millisecond) // pacing between samples, not synchronisation
	}
	t.Logf("slowest status during the flood: %v", worst)
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
	testhelper.Eventually(t, 20*time.Second, "both files written and open", func() bool {
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

// attackSetup is issue 13's first attack: a watcher running as nobody
// whose log directory nobody owns, and a root-only file outside it.
type attackSetup struct {
	logDir, secret string
	intact         func() bool
}

func newAttack(t *testing.T) attackSetup {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the watcher runs as nobody and circled as root")
	}
	base := t.TempDir()
	// nobody must reach its log directory.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a := attackSetup{logDir: filepath.Join(base, "logs"), secret: filepath.Join(base, "root", "authorized_keys")}
	os.Mkdir(a.logDir, 0o755)
	if err := os.Chown(a.logDir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Dir(a.secret), 0o700)
	const content = "ssh-ed25519 AAAA root@host\n"
	if err := os.WriteFile(a.secret, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	a.intact = func() bool {
		b, err := os.ReadFile(a.secret)
		fi, err2 := os.Lstat(a.secret)
		if err != nil || err2 != nil {
			return false
		}
		st := fi.Sys().(*syscall.Stat_t)
		return string(b) == content && fi.Mode() == 0o600 && st.Uid == 0 && st.Gid == 0
	}
	return a
}

// plantedBackup is an old backup name the attacker plants.
const plantedBackup = "app-2001-01-01T00-00-00.000.log"

// config is a watcher run by nobody that prints hello; when go1 appears
// it replaces app.log with a symbolic link to the secret; when go3
// appears it plants a backup of its own whose .gz name links to the
// secret (lumberjack chowned the secret to the backup's owner, then
// truncated it and wrote the gzip data into it); when go2 appears it
// prints a long line.
func (a attackSetup) config(extra string) string {
	l := a.logDir
	return "[watcher:svc]\nuid = nobody\ngid = nogroup\ncmd = /bin/sh -c 'echo hello; while :; do " +
		"if [ -e " + l + "/go1 ]; then rm -f " + l + "/app.log; ln -s " + a.secret + " " + l + "/app.log; echo attacker-1; rm " + l + "/go1; fi; " +
		"if [ -e " + l + "/go3 ]; then echo planted > " + l + "/" + plantedBackup + "; ln -s " + a.secret + " " + l + "/" + plantedBackup + ".gz; rm " + l + "/go3; fi; " +
		"if [ -e " + l + "/go2 ]; then echo ssh-ed25519 attacker-2-$(head -c 300 /dev/zero | tr \"\\\\0\" x); rm " + l + "/go2; fi; " +
		"sleep 0.01; done'\n" +
		"stdout_stream.class = FileStream\nstdout_stream.filename = " + l + "/app.log\n" + extra
}

// trigger creates name in the log directory and waits until the watcher
// has consumed it.
func (a attackSetup) trigger(t *testing.T, name string) {
	t.Helper()
	p := filepath.Join(a.logDir, name)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testhelper.Eventually(t, 10*time.Second, name+" consumed", func() bool {
		_, err := os.Lstat(p)
		return os.IsNotExist(err)
	})
}

// newSupLog is newSup with circled's log captured.
func newSupLog(t *testing.T, path string) (*Supervisor, *testhelper.SyncBuffer) {
	t.Helper()
	cfg, err := config.Load(path, config.Options{Environ: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	var logb testhelper.SyncBuffer
	s := New(cfg, Options{Spawner: runReaper(t), Environ: os.Environ(), Stdout: discardW{}, Stderr: discardW{},
		Log: slog.New(slog.NewTextHandler(&logb, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-errc; s.Close() })
	return s, &logb
}

func droppedBytes(s *Supervisor, name string) int64 {
	st, _, err := s.Status([]string{name})
	if err != nil || len(st) != 1 {
		return 0
	}
	var n int64
	for _, p := range st[0].Processes {
		n += p.DroppedBytes
	}
	return n
}

// Issue 13, point 1: after the watcher swaps its log file for a symbolic
// link to a root-only file, a reopen does not follow the link: the file
// is untouched, the lines are counted as dropped and the error is logged.
func TestWatcherCannotRedirectLogFileByReopen(t *testing.T) {
	a := newAttack(t)
	dir := t.TempDir()
	s, logb := newSupLog(t, writeConfig(t, dir, a.config("")))
	app := filepath.Join(a.logDir, "app.log")
	testhelper.Eventually(t, 10*time.Second, "hello in app.log", func() bool {
		b, _ := os.ReadFile(app)
		return string(b) == "hello\n"
	})
	a.trigger(t, "go1")
	if fi, err := os.Lstat(app); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("app.log is not the attacker's link: %v %v", fi, err)
	}
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	a.trigger(t, "go2")
	testhelper.Eventually(t, 10*time.Second, "the refused line counted in dropped_bytes", func() bool { return droppedBytes(s, "svc") > 0 })
	if !a.intact() {
		b, _ := os.ReadFile(a.secret)
		t.Fatalf("the root-only file changed: %q", b)
	}
	testhelper.Eventually(t, 10*time.Second, "the error logged", func() bool {
		return strings.Contains(logb.String(), "symbolic link") && strings.Contains(logb.String(), app)
	})
}

// The same link, and a planted backup whose .gz name is a link, are
// never followed by a rotation (rename, compress, prune): the link
// becomes a backup entry, a fresh app.log takes the name, the planted
// backup is compressed into a new file, the root-only file is untouched.
func TestWatcherCannotRedirectLogFileByRotation(t *testing.T) {
	a := newAttack(t)
	dir := t.TempDir()
	s, _ := newSupLog(t, writeConfig(t, dir, a.config("stdout_stream.max_bytes = 200\nstdout_stream.backup_count = 5\nstdout_stream.compress = true\n")))
	app := filepath.Join(a.logDir, "app.log")
	testhelper.Eventually(t, 10*time.Second, "hello in app.log", func() bool {
		b, _ := os.ReadFile(app)
		return string(b) == "hello\n"
	})
	a.trigger(t, "go1")
	a.trigger(t, "go3")
	a.trigger(t, "go2") // past max_bytes: rotates, then compresses the backups
	testhelper.Eventually(t, 10*time.Second, "a fresh app.log with the long line, the planted backup compressed", func() bool {
		if !a.intact() {
			b, _ := os.ReadFile(a.secret)
			t.Fatalf("the root-only file changed: %q", b)
		}
		fi, err := os.Lstat(app)
		b, _ := os.ReadFile(app)
		gz, gzErr := os.Lstat(filepath.Join(a.logDir, plantedBackup+".gz"))
		_, plainErr := os.Lstat(filepath.Join(a.logDir, plantedBackup))
		return err == nil && fi.Mode().IsRegular() && strings.HasPrefix(string(b), "ssh-ed25519 attacker-2-") &&
			gzErr == nil && gz.Mode().IsRegular() && os.IsNotExist(plainErr)
	})
	if !a.intact() {
		b, _ := os.ReadFile(a.secret)
		t.Fatalf("the root-only file changed: %q", b)
	}
	if n := droppedBytes(s, "svc"); n != 0 {
		t.Fatalf("dropped_bytes = %d, want 0", n)
	}
}
