package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileSize bounds the size of one config file (main or included).
const MaxFileSize = 16 << 20

// NotRegularError is returned by ReadFile for a path that is not a regular
// file once symlinks are resolved (a FIFO, a device, a directory, a
// socket), or is a symlink loop or a dangling symlink. Load refuses such a
// main file and skips such an included file with a Warning.
type NotRegularError struct {
	Path   string
	Reason string // "a FIFO", "a directory", "a symlink loop", ...
}

func (e *NotRegularError) Error() string { return e.Path + ": not a regular file: " + e.Reason }

// ReadFile reads one config file the way Load does: it never blocks on
// opening (a FIFO is opened non-blocking, then refused), accepts only a
// regular file (after following symlinks), and reads at most MaxFileSize
// bytes (a larger file, or one that grows past it, is an error). A
// FIFO, device, directory, socket, symlink loop or dangling symlink is a
// *NotRegularError; other failures are the *fs.PathError of the open or
// the read.
func ReadFile(path string) ([]byte, error) {
	f, err := openNonBlocking(path)
	if err != nil {
		if r := openFailure(err); r != "" {
			return nil, &NotRegularError{Path: path, Reason: r}
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Path: path, Reason: describeMode(fi.Mode())}
	}
	if fi.Size() > MaxFileSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("file is %d bytes, larger than the maximum of %d (16 MiB)", fi.Size(), MaxFileSize)}
	}
	// Regular files ignore O_NONBLOCK. The limit covers files whose size
	// is not known in advance (/proc) or that grow while read.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("file is larger than the maximum of %d bytes (16 MiB)", MaxFileSize)}
	}
	return data, nil
}

// openFailure names the open errors that mean "not a file to read":
// a symlink loop and a dangling symlink. It returns "" for the others
// (permission denied, a missing file that is not a symlink, ...).
func openFailure(err error) string {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return ""
	}
	if errors.Is(err, syscall.ELOOP) {
		return "a symlink loop (too many levels of symbolic links)"
	}
	if errors.Is(err, fs.ErrNotExist) {
		if fi, lerr := os.Lstat(pe.Path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return "a dangling symlink (its target does not exist)"
		}
	}
	return ""
}

// describeMode says what kind of non-regular file m is.
func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return "not a regular file (mode " + m.String() + ")"
}
