//go:build unix

package logs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/safefile"
)

// waitMill waits until r's background prune/compress is done.
func waitMill(t *testing.T, r *Rotating) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // -race gzip on a loaded host is slow
	for {
		r.mu.Lock()
		busy, err := r.milling, r.millErr
		r.mu.Unlock()
		if !busy {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatal("mill still running after 30s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// secret is a root-only file outside the log directory; intact reports
// whether its content, mode and owner are unchanged.
func secret(t *testing.T) (string, func() bool) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(p, []byte("ssh-ed25519 AAAA root\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi0, _ := os.Stat(p)
	return p, func() bool {
		b, err := os.ReadFile(p)
		fi, err2 := os.Lstat(p)
		return err == nil && err2 == nil && string(b) == "ssh-ed25519 AAAA root\n" && fi.Mode() == 0o600 &&
			fi.Sys().(*syscall.Stat_t).Uid == fi0.Sys().(*syscall.Stat_t).Uid
	}
}

// openLogDir is a log directory others can write (mode 0777), as when a
// service's user owns it.
func openLogDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

var backupRE = regexp.MustCompile(`^app-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log(\.gz)?$`)

// Backups keep lumberjack's names; backup_count prunes, compress leaves
// valid .gz files with the source's mode, and no plain backup.
func TestRotatingBackupsNamedPrunedCompressed(t *testing.T) {
	dir := t.TempDir()
	r := NewRotatingFile(FileSpec{Path: filepath.Join(dir, "app.log"), MaxBytes: 100, BackupCount: 3, Compress: true, Mode: 0o600})
	defer r.Close()
	var all bytes.Buffer
	for i := range 40 {
		line := fmt.Sprintf("line %03d %s\n", i, strings.Repeat("x", 30))
		all.WriteString(line)
		if n, err := r.Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("write: %d %v", n, err)
		}
	}
	if err := waitMill(t, r); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var gzs []string
	for _, e := range ents {
		switch {
		case e.Name() == "app.log":
		case backupRE.MatchString(e.Name()) && strings.HasSuffix(e.Name(), ".gz"):
			gzs = append(gzs, e.Name())
		default:
			t.Errorf("unexpected file %s", e.Name())
		}
	}
	if len(gzs) != 3 {
		t.Fatalf("%d compressed backups, want 3: %v", len(gzs), gzs)
	}
	var got bytes.Buffer
	for _, g := range gzs { // names sort in time order
		fi, _ := os.Stat(filepath.Join(dir, g))
		if fi.Mode() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", g, fi.Mode())
		}
		f, _ := os.Open(filepath.Join(dir, g))
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&got, zr)
		f.Close()
	}
	cur, _ := os.ReadFile(filepath.Join(dir, "app.log"))
	got.Write(cur)
	if !strings.HasSuffix(all.String(), got.String()) || got.Len() < 4*80 {
		t.Fatalf("backups + current = %q, not the tail of what was written", got.String())
	}
	if fi, _ := os.Stat(filepath.Join(dir, "app.log")); fi.Mode() != 0o600 {
		t.Fatalf("current file mode %v after rotation, want 0600", fi.Mode())
	}
}

// The default mode is 0640, exactly, and stays so across rotations.
func TestRotatingDefaultMode(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	r := NewRotating(filepath.Join(dir, "app.log"), 10, 5, 0, false)
	defer r.Close()
	r.Write([]byte("0123456789\n"))
	r.Write([]byte("0123456789\n"))
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("want a backup and the current file, got %d entries", len(ents))
	}
	for _, e := range ents {
		if fi, _ := e.Info(); fi.Mode() != 0o640 {
			t.Fatalf("%s: mode %v, want 0640", e.Name(), fi.Mode())
		}
	}
}

// The attack of issue 13: the user who can write the log directory
// replaces app.log with a symbolic link to a root-only file. A reopen, a
// rotation and a fresh Rotating (a restart) all refuse it; the target is
// untouched and the write reports the error.
func TestRotatingRefusesSymlinkedFile(t *testing.T) {
	for _, how := range []string{"reopen", "rotate", "restart"} {
		t.Run(how, func(t *testing.T) {
			tgt, intact := secret(t)
			dir := openLogDir(t)
			path := filepath.Join(dir, "app.log")
			r := NewRotatingFile(FileSpec{Path: path, MaxBytes: 40, BackupCount: 2, Compress: true})
			defer r.Close()
			if _, err := r.Write([]byte("first\n")); err != nil {
				t.Fatal(err)
			}
			os.Remove(path)
			if err := os.Symlink(tgt, path); err != nil {
				t.Fatal(err)
			}
			line := []byte("ssh-ed25519 AAAA attacker\n")
			var err error
			switch how {
			case "reopen":
				r.Close()
				_, err = r.Write(line)
			case "rotate":
				// The link is moved to a backup name (never followed), a
				// fresh file takes the name, and the backup link is
				// neither compressed (read) nor its target removed.
				r.Write(line)
				_, err = r.Write(bytes.Repeat(line, 2))
				if err == nil {
					err = waitMill(t, r)
				}
				if err == nil {
					if fi, lerr := os.Lstat(path); lerr != nil || !fi.Mode().IsRegular() {
						t.Fatalf("app.log after rotation: %v %v", fi, lerr)
					}
					err = errors.New("rotated safely")
				}
			case "restart":
				r2 := NewRotatingFile(FileSpec{Path: path})
				defer r2.Close()
				_, err = r2.Write(line)
			}
			if err == nil {
				t.Fatal("the write went through")
			}
			if how != "rotate" && !errors.Is(err, safefile.ErrSymlink) {
				t.Fatalf("err = %v, want ErrSymlink", err)
			}
			if !intact() {
				b, _ := os.ReadFile(tgt)
				t.Fatalf("target changed: %q", b)
			}
		})
	}
}

// Rotation and pruning act on entries of the checked directory only: a
// planted backup that links to a root-only file is neither read nor
// followed by compression, a planted .gz link is replaced (not
// truncated or chowned through), pruning removes the links only.
func TestRotatingMillDoesNotFollowPlantedLinks(t *testing.T) {
	tgt, intact := secret(t)
	tgt2, intact2 := secret(t)
	dir := openLogDir(t)
	// An old-looking plain backup whose .gz name is a link, and a backup
	// that is itself a link.
	old := "app-2001-01-01T00-00-00.000.log"
	os.WriteFile(filepath.Join(dir, old), []byte("planted\n"), 0o666)
	os.Symlink(tgt, filepath.Join(dir, old+".gz"))
	os.Symlink(tgt2, filepath.Join(dir, "app-2002-01-01T00-00-00.000.log"))
	r := NewRotatingFile(FileSpec{Path: filepath.Join(dir, "app.log"), MaxBytes: 20, BackupCount: 10, Compress: true})
	defer r.Close()
	r.Write([]byte("0123456789012345\n"))
	r.Write([]byte("0123456789012345\n"))
	waitMill(t, r) // its error names the link it would not compress
	if !intact() || !intact2() {
		t.Fatal("a link's target changed")
	}
	if fi, err := os.Lstat(filepath.Join(dir, old+".gz")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("planted .gz link not replaced by a real file: %v %v", fi, err)
	}
	// Pruning to one backup removes the planted link, not its target.
	r2 := NewRotatingFile(FileSpec{Path: filepath.Join(dir, "app.log"), MaxBytes: 20, BackupCount: 1})
	defer r2.Close()
	r2.Write([]byte("0123456789012345\n"))
	waitMill(t, r2)
	if _, err := os.Lstat(filepath.Join(dir, "app-2002-01-01T00-00-00.000.log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old backup link not pruned: %v", err)
	}
	if !intact() || !intact2() {
		t.Fatal("a link's target changed")
	}
}

// A huge max_age keeps every backup (lumberjack's cutoff overflowed and
// removed them all).
func TestRotatingHugeMaxAgeKeepsBackups(t *testing.T) {
	dir := t.TempDir()
	r := NewRotating(filepath.Join(dir, "app.log"), 10, 0, 999999, false)
	defer r.Close()
	for range 5 {
		r.Write([]byte("0123456789\n"))
	}
	waitMill(t, r)
	if ents, _ := os.ReadDir(dir); len(ents) != 5 {
		t.Fatalf("%d files, want 4 backups and the current file", len(ents))
	}
}

// mountTmpfs mounts a small tmpfs (root only).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs to fill it")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// On a full disk a write keeps its whole lines and takes back the
// partial one: the file never holds half a line, and once there is room
// again the next line starts on its own line. n counts the bytes kept.
func TestRotatingFullDiskDropsWholeLines(t *testing.T) {
	dir := mountTmpfs(t, "64k")
	// Leave a little room, so the file fills after a few writes.
	filler := filepath.Join(dir, "filler")
	os.WriteFile(filler, make([]byte, 48<<10), 0o644)
	r := NewRotating(filepath.Join(dir, "app.log"), 0, 0, 0, false)
	defer r.Close()
	var kept, dropped int
	next := 0
	sawErr := false
	for try := 0; try < 100 && !sawErr; try++ {
		var chunk bytes.Buffer
		for range 37 {
			fmt.Fprintf(&chunk, "N%08d %s\n", next, strings.Repeat("y", 90))
			next++
		}
		n, err := r.Write(chunk.Bytes())
		if n > 0 && chunk.Bytes()[n-1] != '\n' {
			t.Fatalf("n = %d does not end a line", n)
		}
		kept += n
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("err = %v, want ENOSPC", err)
			}
			sawErr = true
			dropped += chunk.Len() - n
		}
	}
	if !sawErr {
		t.Fatal("the disk never filled")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "app.log"))
	if len(b) != kept || dropped == 0 {
		t.Fatalf("file has %d bytes, writes reported %d kept, %d dropped", len(b), kept, dropped)
	}
	t.Logf("%d bytes kept, %d dropped", kept, dropped)
	checkWholeLines(t, b)
	// Room again: the next line is whole and on its own.
	os.Remove(filler)
	line := fmt.Sprintf("N%08d after\n", next)
	if n, err := r.Write([]byte(line)); err != nil || n != len(line) {
		t.Fatalf("write after freeing space: %d %v", n, err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "app.log"))
	checkWholeLines(t, b)
	if !bytes.HasSuffix(b, []byte("\n"+line)) {
		t.Fatalf("file ends %q", b[max(0, len(b)-200):])
	}
}

// checkWholeLines: every line is one N-numbered line, in increasing order.
func checkWholeLines(t *testing.T, b []byte) {
	t.Helper()
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("file ends with a partial line: %q", b[max(0, len(b)-60):])
	}
	lineRE := regexp.MustCompile(`^N(\d{8}) (y{90}|after)$`)
	last := -1
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("broken line %q", l)
		}
		n, _ := strconv.Atoi(m[1])
		if n <= last {
			t.Fatalf("line %d after %d", n, last)
		}
		last = n
	}
}

// TestRotateAfterMovedAway: a file moved away (logrotate without
// copytruncate) before a reopen, then a write that needs a rotation: the
// write lands in a new file at the path, nothing is lost.
func TestRotateAfterMovedAway(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	r := NewRotating(path, 20, 0, 0, false)
	defer r.Close()
	if _, err := r.Write([]byte("first 1\nfirst 2\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, filepath.Join(dir, "moved.log")); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Write([]byte("second\n")); err != nil || n != 7 {
		t.Fatalf("write after the file was moved away: %d, %v", n, err)
	}
	for name, want := range map[string]string{"moved.log": "first 1\nfirst 2\n", "out.log": "second\n"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q (%v), want %q", name, b, err, want)
		}
	}
}
