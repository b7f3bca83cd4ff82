//go:build unix

package ctl

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

func listen(path string, mode os.FileMode) (net.Listener, error) {
	t := socketTrust()
	if err := ensureDir(filepath.Dir(path), t); err != nil {
		return nil, err
	}
	if err := clearStale(path, t); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			// Another daemon won the race between clearStale and here.
			return nil, socketInUse(path)
		}
		return nil, err
	}
	if err := os.Chmod(path, mode.Perm()); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	return ln, nil
}

// ensureDir creates dir 0700 when missing, then checks it and every
// directory above it (checkSocketDir). An existing directory is not
// changed (it may be /tmp or a directory the admin chose); an unsafe one is
// an error wrapping ErrUnsafeSocket.
func ensureDir(dir string, t trust) error {
	err := checkSocketDir(dir, t)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Everything that exists on the way is safe. Create the rest; if
	// someone else creates it first, the check below refuses it.
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	switch err := os.Mkdir(dir, 0o700); {
	case err == nil:
		// Ours, in a safe parent: chmod cannot be redirected. Mkdir is
		// subject to the umask; make sure of 0700.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("create socket directory: %w", err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("create socket directory: %w", err)
	}
	return checkSocketDir(dir, t)
}

// clearStale removes a socket at path that nobody answers on. A socket
// that is not owned by a trusted owner is refused and left alone, whether
// a daemon answers on it or not.
func clearStale(path string, t trust) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	if err := checkSocketFile(path, fi, t); err != nil {
		return fmt.Errorf("%w; not using or removing it", err)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return socketInUse(path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("probe existing socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}
