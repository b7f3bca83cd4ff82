package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/circle-supervisor/circle/internal/safefile"
)

// pidfile is the pidfile circled wrote. Its directory stays open (see
// package safefile), so the removal at exit acts on the directory checked
// at startup.
type pidfile struct {
	dir  *safefile.Dir
	name string
	text string // what circled wrote
}

// maxPidfile bounds what circled reads of an existing pidfile.
const maxPidfile = 64

// writePidfile writes pid to path. It never follows a symbolic link at
// path, never opens anything but a regular file (a FIFO does not block
// startup), and does not overwrite a file that holds something other than
// a pid (a stale pidfile is overwritten).
func writePidfile(path string, pid int) (*pidfile, error) {
	dir, err := safefile.OpenDir(filepath.Dir(path), false)
	if err != nil {
		return nil, err
	}
	p := &pidfile{dir: dir, name: filepath.Base(path), text: strconv.Itoa(pid) + "\n"}
	f, err := dir.OpenFile(p.name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		dir.Close()
		return nil, err
	}
	defer f.Close()
	old, err := io.ReadAll(io.LimitReader(f, maxPidfile+1))
	if err == nil && len(old) > 0 && !isPid(string(old)) {
		err = fmt.Errorf("%s exists and does not hold a pid; refusing to overwrite it", path)
	}
	if err == nil {
		// Another user's file (in /tmp, say) stays theirs to rewrite:
		// they could make it name any process.
		if fi, serr := f.Stat(); serr != nil {
			err = serr
		} else if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() {
			err = fmt.Errorf("%s exists and belongs to uid %d; refusing to use it", path, uid)
		}
	}
	if err == nil {
		err = f.Truncate(0)
	}
	if err == nil {
		_, err = f.WriteAt([]byte(p.text), 0)
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		dir.Close()
		return nil, err
	}
	return p, nil
}

func isPid(s string) bool {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return err == nil && n > 0 && len(s) <= maxPidfile
}

// remove removes the pidfile if it still holds what circled wrote;
// otherwise it leaves it and says why.
func (p *pidfile) remove() error {
	defer p.dir.Close()
	f, err := p.dir.OpenFile(p.name, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pidfile left in place: %w", err)
	}
	got, err := io.ReadAll(io.LimitReader(f, maxPidfile+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("pidfile left in place: %w", err)
	}
	if string(got) != p.text {
		return fmt.Errorf("pidfile %s no longer holds pid %s; left in place", filepath.Join(p.dir.Path(), p.name), strings.TrimSpace(p.text))
	}
	return p.dir.Remove(p.name)
}
