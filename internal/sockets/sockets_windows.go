package sockets

import (
	"fmt"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// Bind is not supported on Windows (supervisor/config refuses a
// [socket:NAME] section there).
func Bind(c config.Socket) (*Socket, error) {
	return nil, fmt.Errorf("socket %s: %w", c.Name, ErrNotSupported)
}

func removeIfSame(path string, dev, ino uint64) {}
