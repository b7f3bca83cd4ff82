//go:build !unix

package config

import "os"

// openNonBlocking opens path for reading. On Windows opening a file never
// waits for a writer; ReadFile then refuses anything but a regular file.
func openNonBlocking(path string) (*os.File, error) {
	return os.Open(path)
}
