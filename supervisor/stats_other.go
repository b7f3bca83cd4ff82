//go:build !linux

package supervisor

import (
	"fmt"
	"runtime"
	"time"
)

func procUsage(pid int) (time.Duration, int64, error) {
	return 0, 0, fmt.Errorf("stats are not supported on %s yet", runtime.GOOS)
}
