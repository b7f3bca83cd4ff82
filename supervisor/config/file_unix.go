//go:build unix

package config

import (
	"os"
	"syscall"
)

// openNonBlocking opens path for reading without blocking: opening a FIFO
// for reading waits for a writer unless O_NONBLOCK is set. Symlinks are
// followed (conf.d entries are often links into a directory of available
// files); ReadFile checks what was opened with fstat, so a link swapped in
// between cannot make it read anything but a regular file.
func openNonBlocking(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}
