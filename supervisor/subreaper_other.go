//go:build unix && !linux

package supervisor

import (
	"errors"
	"runtime"
)

func setSubreaper() error { return errors.New("child subreaper is not supported on " + runtime.GOOS) }
