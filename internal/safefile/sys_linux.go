package safefile

import "golang.org/x/sys/unix"

// dirOpenFlags: O_PATH, so that a directory circled may only search (mode
// --x) can still be walked.
const dirOpenFlags = unix.O_PATH
