package ctl

import (
	"os"
	"path/filepath"
	"strconv"
)

// SocketEnv is the environment variable that overrides the default socket.
const SocketEnv = "CIRCLED_SOCKET"

// ResolveSocket is the socket rule shared by circled and circlectl:
// the --socket flag, else the config file's [circled] socket, else
// DefaultSocketPath(). A relative path is made absolute against the
// current directory, so a daemon that later changes directory keeps it.
func ResolveSocket(flag, configSocket string) string {
	p := flag
	if p == "" {
		p = configSocket
	}
	if p == "" {
		return DefaultSocketPath()
	}
	return absPath(p)
}

// DefaultSocketPath is the socket used when neither flag nor config names
// one: $CIRCLED_SOCKET, else /run/circled/circled.sock for root on Linux
// (/var/run/circled/circled.sock on macOS and the BSDs), else
// $XDG_RUNTIME_DIR/circled.sock, else /tmp/circled-$UID/circled.sock.
// On Windows it is the named pipe \\.\pipe\circled.
func DefaultSocketPath() string {
	if p := os.Getenv(SocketEnv); p != "" {
		return absPath(p)
	}
	return defaultSocketPath()
}

// unixDefault is the rule after $CIRCLED_SOCKET on Unix, pure for tests.
func unixDefault(euid int, getenv func(string) string, rootPath string) string {
	if euid == 0 {
		return rootPath
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "circled.sock")
	}
	// Literally /tmp, not os.TempDir(): $TMPDIR may differ between the
	// daemon's environment and the client's.
	return filepath.Join("/tmp", "circled-"+strconv.Itoa(euid), "circled.sock")
}

func absPath(p string) string {
	if pipe, ok := pipePath(p); ok {
		return pipe // a Windows named pipe: never a file path
	}
	if filepath.IsAbs(p) {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
