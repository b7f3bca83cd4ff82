package logs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/internal/safefile"
)

// Backup names: NAME-2006-01-02T15-04-05.000.EXT in local time, plus .gz
// when compressed; the format lumberjack used before, kept for users'
// scripts and for the backups of earlier versions.
const (
	backupTimeFormat = "2006-01-02T15-04-05.000"
	compressSuffix   = ".gz"
)

// Rotating is a file rotated at exactly maxBytes, on whole writes (whole
// lines). Backups are named by the millisecond of the rotation; a
// rotation waits for a name no other backup has.
//
// Every operation is relative to the descriptor of the file's directory,
// resolved once (package safefile): the file is opened without following
// a symbolic link, only if it is a regular file, and rotation renames,
// compresses and removes entries of that directory only, so a user who
// can write the directory cannot redirect any of it to another file.
//
// A write the file takes only in part (a full disk) is cut back to its
// last whole line, so the next write starts on a line of its own: lines
// are dropped whole, never halves.
type Rotating struct {
	mu       sync.Mutex
	dirPath  string // absolute
	base     string // file name in dirPath
	prefix   string // base without its extension, plus "-"
	ext      string
	maxBytes int64
	backups  int
	maxAge   int // days
	compress bool
	mode     os.FileMode

	dirs   *dirSet
	dir    *sharedDir // nil until the first open, and after Close
	f      *os.File
	size   int64
	needNL bool // a partial line could not be taken back

	milling, millAgain bool
	millErr            error // the last mill's error (tests)
}

// NewRotating makes a rotating file with mode DefaultFileMode; maxBytes 0
// never rotates by size.
func NewRotating(path string, maxBytes int64, backups, maxAgeDays int, compress bool) *Rotating {
	return NewRotatingFile(FileSpec{Path: path, MaxBytes: maxBytes, BackupCount: backups, MaxAgeDays: maxAgeDays, Compress: compress})
}

// NewRotatingFile makes a rotating file from spec (its timed rotation is
// Files' business and is ignored here).
func NewRotatingFile(spec FileSpec) *Rotating {
	return newRotating(spec, newDirSet())
}

func newRotating(spec FileSpec, dirs *dirSet) *Rotating {
	path := spec.Path
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	mode := spec.Mode.Perm()
	if mode == 0 {
		mode = DefaultFileMode
	}
	return &Rotating{
		dirPath: filepath.Dir(path), base: base, prefix: base[:len(base)-len(ext)] + "-", ext: ext,
		maxBytes: spec.MaxBytes, backups: spec.BackupCount, maxAge: spec.MaxAgeDays, compress: spec.Compress,
		mode: mode, dirs: dirs,
	}
}

// Path is the file's path.
func (r *Rotating) Path() string { return filepath.Join(r.dirPath, r.base) }

// Write writes p to the current file, rotating first when p would take
// the file past maxBytes. Write(nil) just opens the file. On an error,
// n is the length of the leading whole lines of p that are in the file
// (the rest was not written or was cut back).
func (r *Rotating) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.openLocked(); err != nil {
		return 0, err
	}
	if r.maxBytes > 0 && r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotateLocked(); err != nil {
			return 0, err
		}
	}
	return r.writeLocked(p)
}

func (r *Rotating) writeLocked(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.needNL {
		// Ends the partial line an earlier write left behind.
		if _, err := r.f.Write([]byte{'\n'}); err != nil {
			return 0, err
		}
		r.needNL = false
		r.size++
	}
	n, err := r.f.Write(p)
	if err == nil {
		r.size += int64(n)
		return n, nil
	}
	keep := bytes.LastIndexByte(p[:n], '\n') + 1
	if n > keep {
		// Take the partial line back: O_APPEND left the offset at the end
		// of what was written.
		end, serr := r.f.Seek(0, io.SeekCurrent)
		if serr != nil || r.f.Truncate(end-int64(n-keep)) != nil {
			r.needNL = true
		}
	}
	r.size += int64(keep)
	return keep, err
}

// Rotate starts a new file now (not when the file is empty).
func (r *Rotating) Rotate() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.openLocked(); err != nil {
		return err
	}
	return r.rotateLocked()
}

// Close closes the file; the next Write opens it again at its path, in
// the directory resolved again.
func (r *Rotating) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	if r.f != nil {
		err = r.f.Close()
		r.f = nil
	}
	if r.dir != nil {
		r.dirs.release(r.dir)
		r.dir = nil
	}
	r.needNL = false
	return err
}

func (r *Rotating) openLocked() error {
	if r.f != nil {
		return nil
	}
	if r.dir == nil {
		d, err := r.dirs.acquire(r.dirPath)
		if err != nil {
			return err
		}
		r.dir = d
	}
	f, err := r.dir.OpenFile(r.base, os.O_WRONLY|os.O_APPEND|os.O_CREATE, r.mode)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size, r.needNL = f, fi.Size(), false
	r.millLocked()
	return nil
}

// rotateLocked renames the open file to a backup name and opens a new
// one. The new file keeps the old one's owner (as lumberjack did) and
// gets r.mode. An empty file is not rotated.
func (r *Rotating) rotateLocked() error {
	fi, err := r.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		r.size = 0
		return nil
	}
	name, err := r.backupNameLocked()
	if err != nil {
		return err
	}
	r.f.Close()
	r.f, r.size, r.needNL = nil, 0, false
	// The file may have been moved away since it was opened (logrotate
	// without copytruncate, before `circlectl reopen`): it is someone
	// else's backup now; start the new file without renaming anything.
	// Failing here would drop the write that asked for the rotation.
	if err := r.dir.Rename(r.base, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := r.dir.OpenFile(r.base, os.O_WRONLY|os.O_APPEND|os.O_CREATE, r.mode)
	if err != nil {
		return err
	}
	chownLike(f, fi)
	nfi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, nfi.Size()
	r.millLocked()
	return nil
}

// backupNameLocked is the backup name for now, waiting for the next
// millisecond while the name is taken (two rotations within one
// millisecond), for at most 2 s.
func (r *Rotating) backupNameLocked() (string, error) {
	for range 2000 {
		now := time.Now()
		name := r.prefix + now.Format(backupTimeFormat) + r.ext
		if !r.dir.Exists(name) && !r.dir.Exists(name+compressSuffix) {
			return name, nil
		}
		time.Sleep(time.Millisecond - time.Duration(now.Nanosecond())%time.Millisecond)
	}
	return "", fmt.Errorf("rotate %s: no free backup name", r.Path())
}

// millLocked prunes and compresses backups in the background (one
// goroutine per file at a time; a request while it runs makes it run
// once more).
func (r *Rotating) millLocked() {
	if r.backups <= 0 && r.maxAge <= 0 && !r.compress {
		return
	}
	if r.milling {
		r.millAgain = true
		return
	}
	r.milling = true
	d := r.dirs.ref(r.dir)
	go func() {
		defer r.dirs.release(d)
		for {
			err := r.millOnce(d.Dir)
			r.mu.Lock()
			r.millErr = err
			if !r.millAgain {
				r.milling = false
				r.mu.Unlock()
				return
			}
			r.millAgain = false
			r.mu.Unlock()
		}
	}()
}

type backup struct {
	name string
	t    time.Time
}

// backups lists the backups in d, newest first.
func (r *Rotating) listBackups(d *safefile.Dir) ([]backup, error) {
	ents, err := d.ReadDir()
	if err != nil {
		return nil, err
	}
	var out []backup
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		n := e.Name()
		for _, ext := range []string{r.ext, r.ext + compressSuffix} {
			if !strings.HasPrefix(n, r.prefix) || !strings.HasSuffix(n, ext) || len(n) < len(r.prefix)+len(ext) {
				continue
			}
			if t, err := time.ParseInLocation(backupTimeFormat, n[len(r.prefix):len(n)-len(ext)], time.Local); err == nil {
				out = append(out, backup{n, t})
				break
			}
		}
	}
	slices.SortStableFunc(out, func(a, b backup) int { return b.t.Compare(a.t) })
	return out, nil
}

// millOnce applies backup_count, then max_age, then compresses what is
// left, like lumberjack: a backup and its .gz count as one.
func (r *Rotating) millOnce(d *safefile.Dir) error {
	files, err := r.listBackups(d)
	if err != nil {
		return err
	}
	var remove, keep []backup
	if r.backups > 0 {
		seen := map[string]bool{}
		for _, b := range files {
			seen[strings.TrimSuffix(b.name, compressSuffix)] = true
			if len(seen) > r.backups {
				remove = append(remove, b)
			} else {
				keep = append(keep, b)
			}
		}
		files = keep
	}
	// Beyond about 2800 years nothing is old enough (and AddDate would
	// overflow).
	if r.maxAge > 0 && r.maxAge < 1<<20 {
		cutoff := time.Now().AddDate(0, 0, -r.maxAge)
		keep = nil
		for _, b := range files {
			if b.t.Before(cutoff) {
				remove = append(remove, b)
			} else {
				keep = append(keep, b)
			}
		}
		files = keep
	}
	var errs []error
	for _, b := range remove {
		if err := d.Remove(b.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if r.compress {
		for _, b := range files {
			if !strings.HasSuffix(b.name, compressSuffix) {
				if err := compressFile(d, b.name); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// compressFile writes name.gz (mode and owner of name) and removes name.
// name must be a regular file (a symbolic link is not read); a leftover
// name.gz of an interrupted attempt is replaced (the entry, never what a
// link points to).
func compressFile(d *safefile.Dir, name string) (err error) {
	src, err := d.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	dst := name + compressSuffix
	if err := d.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	gzf, err := d.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			gzf.Close()
			d.Remove(dst)
			err = fmt.Errorf("compress %s: %w", filepath.Join(d.Path(), name), err)
		}
	}()
	chownLike(gzf, fi)
	gz := gzip.NewWriter(gzf)
	if _, err := io.Copy(gz, src); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if err := gzf.Close(); err != nil {
		return err
	}
	return d.Remove(name)
}
