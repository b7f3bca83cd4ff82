package logs

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// FileSpec describes a FileStream or TimedRotatingFileStream destination.
type FileSpec struct {
	Path        string
	MaxBytes    int64 // size rotation; 0 = none
	BackupCount int
	MaxAgeDays  int
	Compress    bool
	// RotateWhen (S, M, H, D, midnight, W0..W6) and RotateInterval make a
	// timed rotation.
	RotateWhen     string
	RotateInterval int
	// Mode is the permission of each file circled creates at Path (at
	// first use and at every rotation), exactly (the umask does not
	// apply); 0 means DefaultFileMode. An existing file keeps its mode.
	// Compressed backups get their source's mode.
	Mode os.FileMode
}

// DefaultFileMode is the mode of a log file when FileSpec.Mode is 0.
const DefaultFileMode os.FileMode = 0o640

// Files shares one rotating file per path between every process and
// watcher writing to it, and reopens them all on demand. Each Get holds a
// reference until its Release; CloseUnused closes the files nobody holds
// (those of removed watchers), so reloads do not accumulate open files.
type Files struct {
	mu    sync.Mutex
	files map[string]*file
	dirs  *dirSet // one descriptor per directory, shared by its files
}

type file struct {
	*Rotating
	timer *time.Timer
	refs  int
}

// fileRef is one holder's reference to a shared file.
type fileRef struct {
	*file
	fs       *Files
	released bool
}

// Release drops the reference; the file stays open until CloseUnused.
func (r *fileRef) Release() {
	r.fs.mu.Lock()
	defer r.fs.mu.Unlock()
	if !r.released {
		r.released = true
		r.refs--
	}
}

// NewFiles makes an empty set.
func NewFiles() *Files { return &Files{files: map[string]*file{}, dirs: newDirSet()} }

// Get returns the destination for spec, opening it on first use. A second
// spec for the same path gets the first one's file (its rotation wins).
func (fs *Files) Get(spec FileSpec) Dest {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.files[spec.Path]
	if f == nil {
		f = &file{Rotating: newRotating(spec, fs.dirs)}
		if spec.RotateWhen != "" {
			f.maxBytes = 0
			fs.scheduleLocked(f, spec.RotateWhen, max(spec.RotateInterval, 1))
		}
		fs.files[spec.Path] = f
	}
	f.refs++
	return &fileRef{file: f, fs: fs}
}

// CloseUnused closes the files no process holds and forgets them; a
// later Get opens them again.
func (fs *Files) CloseUnused() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for p, f := range fs.files {
		if f.refs > 0 {
			continue
		}
		if f.timer != nil {
			f.timer.Stop()
			f.timer = nil
		}
		f.Close()
		delete(fs.files, p)
	}
}

func (fs *Files) scheduleLocked(f *file, when string, interval int) {
	next := NextRotation(time.Now(), when, interval)
	f.timer = time.AfterFunc(time.Until(next), func() {
		f.Rotate()
		fs.mu.Lock()
		defer fs.mu.Unlock()
		if f.timer != nil {
			fs.scheduleLocked(f, when, interval)
		}
	})
}

// NextRotation is the next rotation time after now for Python's
// TimedRotatingFileHandler "when" values.
func NextRotation(now time.Time, when string, interval int) time.Time {
	switch strings.ToUpper(when) {
	case "S":
		return now.Truncate(time.Second).Add(time.Duration(interval) * time.Second)
	case "M":
		return now.Truncate(time.Minute).Add(time.Duration(interval) * time.Minute)
	case "H":
		return now.Truncate(time.Hour).Add(time.Duration(interval) * time.Hour)
	case "D":
		return now.Add(time.Duration(interval) * 24 * time.Hour)
	case "MIDNIGHT":
		y, m, d := now.Date()
		return time.Date(y, m, d+interval, 0, 0, 0, 0, now.Location())
	}
	if len(when) == 2 && (when[0] == 'W' || when[0] == 'w') {
		wd := time.Weekday(when[1] - '0')
		y, m, d := now.Date()
		days := (int(wd) - int(now.Weekday()) + 7) % 7
		if days == 0 {
			days = 7
		}
		return time.Date(y, m, d+days, 0, 0, 0, 0, now.Location())
	}
	return now.Add(time.Hour)
}

// Reopen closes every file; the next write reopens it at its path, so an
// external logrotate's mv is followed by a fresh file. The directories
// are resolved again too (a directory that was removed and made again is
// followed).
func (fs *Files) Reopen() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.dirs.forget()
	var errs []string
	for p, f := range fs.files {
		if err := f.Close(); err != nil {
			errs = append(errs, p+": "+err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("reopen: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Close closes every file and stops timed rotations.
func (fs *Files) Close() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for p, f := range fs.files {
		if f.timer != nil {
			f.timer.Stop()
			f.timer = nil
		}
		f.Close()
		delete(fs.files, p)
	}
}
