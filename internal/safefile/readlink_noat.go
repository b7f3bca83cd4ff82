//go:build aix || solaris || illumos

package safefile

import "golang.org/x/sys/unix"

// readlinkat is missing from x/sys/unix here: a symbolic link in a log
// or pidfile directory path is refused.
func readlinkat(dirfd int, name string) (string, error) {
	return "", unix.ENOTSUP
}
