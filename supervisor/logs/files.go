package logs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
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
}

// noRotation is lumberjack's MaxSize (in MB) that never triggers.
const noRotation = 1 << 30

// Files shares one rotating file per path between every process and
// watcher writing to it, and reopens them all on demand. Each Get holds a
// reference until its Release; CloseUnused closes the files nobody holds
// (those of removed watchers), so reloads do not accumulate open files.
type Files struct {
	mu    sync.Mutex
	files map[string]*file
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
func NewFiles() *Files { return &Files{files: map[string]*file{}} }

// Get returns the destination for spec, opening it on first use. A second
// spec for the same path gets the first one's file (its rotation wins).
func (fs *Files) Get(spec FileSpec) Dest {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.files[spec.Path]
	if f == nil {
		f = &file{Rotating: NewRotating(spec.Path, spec.MaxBytes, spec.BackupCount, spec.MaxAgeDays, spec.Compress)}
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

// Rotating is a file rotated at exactly maxBytes, on whole writes (whole
// lines), with backups named, compressed and pruned by lumberjack.
// Rotation is decided here rather than by lumberjack because lumberjack
// counts sizes in whole megabytes and names backups by the millisecond:
// two rotations in the same millisecond would overwrite a backup, so
// rotate waits for a free name.
type Rotating struct {
	mu       sync.Mutex
	lj       *lumberjack.Logger
	maxBytes int64
	size     int64
	sized    bool
}

// NewRotating makes a rotating file; maxBytes 0 never rotates by size.
func NewRotating(path string, maxBytes int64, backups, maxAgeDays int, compress bool) *Rotating {
	return &Rotating{
		lj:       &lumberjack.Logger{Filename: path, MaxSize: noRotation, MaxBackups: backups, MaxAge: maxAgeDays, Compress: compress, LocalTime: true},
		maxBytes: maxBytes,
	}
}

// Write writes p whole to the current file, rotating first when p would
// take the file past maxBytes.
func (r *Rotating) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.sized {
		r.size, r.sized = fileSize(r.lj.Filename), true
	}
	if r.maxBytes > 0 && r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotateLocked(); err != nil {
			return 0, err
		}
	}
	n, err := r.lj.Write(p)
	r.size += int64(n)
	return n, err
}

// Rotate starts a new file now.
func (r *Rotating) Rotate() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rotateLocked()
}

func (r *Rotating) rotateLocked() error {
	for backupExists(r.lj.Filename, time.Now()) {
		time.Sleep(time.Millisecond - time.Duration(time.Now().Nanosecond())%time.Millisecond)
	}
	r.size = 0
	return r.lj.Rotate()
}

// Close closes the file; the next Write reopens it at its path.
func (r *Rotating) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sized = false
	return r.lj.Close()
}

// backupExists reports whether lumberjack's backup name for t is taken
// (plain or compressed).
func backupExists(path string, t time.Time) bool {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	name := filepath.Join(dir, strings.TrimSuffix(base, ext)+"-"+t.Format("2006-01-02T15-04-05.000")+ext)
	_, err1 := os.Lstat(name)
	_, err2 := os.Lstat(name + ".gz")
	return err1 == nil || err2 == nil
}

func fileSize(path string) int64 {
	if fi, err := os.Stat(path); err == nil {
		return fi.Size()
	}
	return 0
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
// external logrotate's mv is followed by a fresh file.
func (fs *Files) Reopen() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
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
