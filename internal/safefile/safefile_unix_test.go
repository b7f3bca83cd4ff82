//go:build unix

package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// target is a file outside the directory under attack, with known
// content and mode; unchanged reports whether it still is so.
func target(t *testing.T) (path string, unchanged func() bool) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, func() bool {
		b, err := os.ReadFile(path)
		fi, err2 := os.Lstat(path)
		return err == nil && err2 == nil && string(b) == "root only\n" && fi.Mode() == 0o600
	}
}

func openDir(t *testing.T, path string) *Dir {
	t.Helper()
	d, err := OpenDir(path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// A symbolic link at the name is refused for every kind of open, in a
// trusted directory too; its target is untouched.
func TestOpenFileRefusesFinalSymlink(t *testing.T) {
	tgt, unchanged := target(t)
	for _, mode := range []os.FileMode{0o700, 0o777} {
		dir := t.TempDir()
		os.Chmod(dir, mode)
		if err := os.Symlink(tgt, filepath.Join(dir, "app.log")); err != nil {
			t.Fatal(err)
		}
		d := openDir(t, dir)
		for _, flag := range []int{os.O_WRONLY | os.O_APPEND | os.O_CREATE, os.O_RDWR | os.O_CREATE | os.O_TRUNC, os.O_RDONLY} {
			f, err := d.OpenFile("app.log", flag, 0o640)
			if !errors.Is(err, ErrSymlink) {
				if f != nil {
					f.Close()
				}
				t.Fatalf("dir mode %o flag %#x: err = %v, want ErrSymlink", mode, flag, err)
			}
		}
		if !unchanged() {
			t.Fatal("target changed")
		}
	}
}

// A FIFO (with or without a reader) and a directory are refused at once:
// no open blocks.
func TestOpenFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	d := openDir(t, dir)
	for _, name := range []string{"fifo", "sub"} {
		done := make(chan error, 1)
		go func() {
			f, err := d.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
			if f != nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Fatalf("%s: err = %v, want ErrNotRegular", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: open blocked", name)
		}
	}
}

// In a directory others can write, a hard link to a file elsewhere is
// refused; in a trusted directory a second link is fine.
func TestHardLinkInUntrustedDir(t *testing.T) {
	tgt, unchanged := target(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(tgt, filepath.Join(dir, "app.log")); err != nil {
		t.Skipf("cannot make a hard link here: %v", err)
	}
	d := openDir(t, dir)
	if d.Trusted() {
		t.Fatal("a mode 0777 directory is trusted")
	}
	if _, err := d.OpenFile("app.log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); !errors.Is(err, ErrHardLinked) {
		t.Fatalf("err = %v, want ErrHardLinked", err)
	}
	if !unchanged() {
		t.Fatal("target changed")
	}
	os.Chmod(dir, 0o755)
	d2 := openDir(t, dir)
	if !d2.Trusted() {
		t.Fatal("own 0755 directory not trusted")
	}
	f, err := d2.OpenFile("app.log", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// A symbolic link in the directory path is followed only where nobody
// else can write; missing directories are made.
func TestOpenDirSymlinks(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o755)
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	os.Symlink(real, filepath.Join(base, "trusted-link"))
	os.Symlink(real, filepath.Join(open, "link"))

	d, err := OpenDir(filepath.Join(base, "trusted-link", "new", "deeper"), true)
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.OpenFile("x.log", os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	d.Close()
	if _, err := os.Stat(filepath.Join(real, "new", "deeper", "x.log")); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{filepath.Join(open, "link"), filepath.Join(open, "link", "sub")} {
		if d, err := OpenDir(p, true); !errors.Is(err, ErrUntrustedSymlink) {
			if d != nil {
				d.Close()
			}
			t.Fatalf("%s: err = %v, want ErrUntrustedSymlink", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(real, "sub")); err == nil {
		t.Fatal("a directory was made through the untrusted link")
	}
	// A file where a directory is expected.
	os.WriteFile(filepath.Join(base, "file"), nil, 0o644)
	if _, err := OpenDir(filepath.Join(base, "file"), true); err == nil {
		t.Fatal("a regular file opened as a directory")
	}
}

// A file OpenFile creates has exactly the mode asked for, whatever the
// umask; an existing file keeps its own. O_TRUNC truncates regular files.
func TestCreateModeIsExact(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	d := openDir(t, dir)
	f, err := d.OpenFile("a.log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hello\n")
	f.Close()
	if fi, _ := os.Stat(filepath.Join(dir, "a.log")); fi.Mode() != 0o644 {
		t.Fatalf("mode %v, want 0644", fi.Mode())
	}
	os.Chmod(filepath.Join(dir, "a.log"), 0o600)
	f, err = d.OpenFile("a.log", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, _ := os.Stat(filepath.Join(dir, "a.log")); fi.Mode() != 0o600 || fi.Size() != 0 {
		t.Fatalf("existing file: mode %v size %d, want 0600 and truncated", fi.Mode(), fi.Size())
	}
	if _, err := d.OpenFile("a.log", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, os.ErrExist) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if _, err := d.OpenFile(bad, os.O_RDONLY, 0); err == nil {
			t.Fatalf("name %q accepted", bad)
		}
	}
}

// Rename and Remove act on entries: a symbolic link is renamed or
// removed, its target is not touched.
func TestRenameRemoveDoNotFollow(t *testing.T) {
	tgt, unchanged := target(t)
	dir := t.TempDir()
	os.Symlink(tgt, filepath.Join(dir, "link"))
	d := openDir(t, dir)
	if err := d.Rename("link", "moved"); err != nil {
		t.Fatal(err)
	}
	if !d.Exists("moved") || d.Exists("link") {
		t.Fatal("rename did not move the entry")
	}
	if err := d.Remove("moved"); err != nil {
		t.Fatal(err)
	}
	if !unchanged() {
		t.Fatal("target changed")
	}
	ents, err := d.ReadDir()
	if err != nil || len(ents) != 0 {
		t.Fatalf("ReadDir = %v, %v", ents, err)
	}
}

// The descriptor is checked once: after the directory is moved away and
// its path becomes a symbolic link to elsewhere, files still land in the
// directory that was opened.
func TestDirDescriptorPinned(t *testing.T) {
	tgt, unchanged := target(t)
	tgtDir := filepath.Dir(tgt)
	base := t.TempDir()
	logs := filepath.Join(base, "logs")
	os.Mkdir(logs, 0o755)
	d := openDir(t, logs)
	if err := os.Rename(logs, logs+".old"); err != nil {
		t.Fatal(err)
	}
	os.Symlink(tgtDir, logs)
	f, err := d.OpenFile("secret", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("line\n")
	f.Close()
	if b, _ := os.ReadFile(filepath.Join(logs+".old", "secret")); string(b) != "line\n" {
		t.Fatalf("the opened directory got %q", b)
	}
	if !unchanged() {
		t.Fatal("the file behind the new link changed")
	}
}

// As root: a directory owned by another user is not trusted even when
// only its owner can write it.
func TestOtherOwnerUntrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown a directory to nobody")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if openDir(t, dir).Trusted() {
		t.Fatal("a directory owned by nobody is trusted by root")
	}
}
