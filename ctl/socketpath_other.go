//go:build !unix && !windows

package ctl

import (
	"os"
	"path/filepath"
)

func defaultSocketPath() string { return filepath.Join(os.TempDir(), "circled.sock") }
