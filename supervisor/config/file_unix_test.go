//go:build unix

package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loadNoHang runs Load and fails the test if it blocks (a FIFO with no
// writer blocked the old loader forever). The minute is a deadlock guard,
// not a speed requirement.
func loadNoHang(t *testing.T, path string) (*Config, error) {
	t.Helper()
	type res struct {
		c   *Config
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := Load(path, testOptions("PATH=/bin"))
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-time.After(time.Minute):
		t.Fatalf("Load(%s) blocked", path)
		return nil, nil
	}
}

// A FIFO or a device as the main file is refused at once, never read
// (issue 13.7: a FIFO hung reload and shutdown, /dev/zero ran out of
// memory).
func TestMainFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "circled.ini")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(dir, "loop.ini")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, want string }{
		{fifo, fifo + ": not a regular file: a FIFO"},
		{"/dev/zero", "/dev/zero: not a regular file: a character device"},
		{dir, dir + ": not a regular file: a directory"},
		{loop, loop + ": not a regular file: a symlink loop (too many levels of symbolic links)"},
	} {
		c, err := loadNoHang(t, tt.path)
		if err == nil || c != nil {
			t.Fatalf("%s: loaded", tt.path)
		}
		if err.Error() != tt.want {
			t.Errorf("error %q, want %q", err, tt.want)
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: not a *Error: %T", tt.path, err)
		}
		if _, err := ReadDaemon(tt.path); err == nil || err.Error() != tt.want {
			t.Errorf("ReadDaemon: %v, want %q", err, tt.want)
		}
	}
}

// A file larger than MaxFileSize is an error, whatever its stat says.
func TestFileTooLarge(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "circled.ini")
	big := "[watcher:a]\ncmd = x\n;" + strings.Repeat("x", MaxFileSize) + "\n"
	if err := os.WriteFile(p, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p, testOptions())
	if want := p + ": file is " + strconv.Itoa(len(big)) + " bytes, larger than the maximum of 16777216 (16 MiB)"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if _, err := ReadFile("/proc/self/cmdline"); err != nil && !os.IsNotExist(err) {
		t.Errorf("a regular file whose size is not known in advance: %v", err)
	}
}

// Odd files in conf.d and in an include glob are skipped with a warning
// naming each and its reason; legitimate symlinks are followed.
func TestSkippedIncludes(t *testing.T) {
	for _, mode := range []string{"conf.d", "include", "include_dir"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			d := filepath.Join(dir, "conf.d")
			main := "[watcher:main]\ncmd = x\n"
			switch mode {
			case "include":
				main = "[circled]\ninclude = conf.d/*.ini\n" + main
			case "include_dir":
				main = "[circled]\ninclude_dir = conf.d\n" + main
			}
			files := map[string]string{
				"circled.ini":          main,
				"conf.d/real.ini":      "[watcher:real]\ncmd = x\n",
				"available/linked.ini": "[watcher:linked]\ncmd = x\n",
			}
			for name, content := range files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(unix.Mkfifo(filepath.Join(d, "fifo.ini"), 0o600))
			must(os.Mkdir(filepath.Join(d, "dir.ini"), 0o755))
			must(os.Symlink("loop.ini", filepath.Join(d, "loop.ini")))
			must(os.Symlink("nowhere.ini", filepath.Join(d, "dangling.ini")))
			must(os.Symlink("/dev/zero", filepath.Join(d, "zero.ini")))
			must(os.Symlink("../available/linked.ini", filepath.Join(d, "linked.ini")))

			c, err := loadNoHang(t, filepath.Join(dir, "circled.ini"))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, w := range c.Watchers {
				names = append(names, w.Name)
			}
			slices.Sort(names)
			if want := []string{"linked", "main", "real"}; !slices.Equal(names, want) {
				t.Errorf("watchers %q, want %q", names, want)
			}
			var got []string
			for _, w := range c.Warnings {
				got = append(got, strings.ReplaceAll(w.String(), d, "{d}"))
			}
			want := []string{
				"{d}/dangling.ini: skipped: not a regular file: a dangling symlink (its target does not exist)",
				"{d}/dir.ini: skipped: not a regular file: a directory",
				"{d}/fifo.ini: skipped: not a regular file: a FIFO",
				"{d}/loop.ini: skipped: not a regular file: a symlink loop (too many levels of symbolic links)",
				"{d}/zero.ini: skipped: not a regular file: a character device",
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, f := range c.Files {
				if strings.Contains(f, "fifo") || strings.Contains(f, "zero") {
					t.Errorf("read %s", f)
				}
			}
		})
	}
}
