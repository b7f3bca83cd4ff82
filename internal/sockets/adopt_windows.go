package sockets

import (
	"os"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// adoptFile: no live upgrade on Windows.
func adoptFile(fd int, c config.Socket) (*os.File, error) { return nil, ErrNotSupported }
