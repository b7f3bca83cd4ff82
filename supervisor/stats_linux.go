package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// procUsage reads a process's CPU time and RSS from /proc.
func procUsage(pid int) (time.Duration, int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, nil // exited meanwhile: report zeros
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// Fields after the command: state(0) ... utime(11) stime(12) ... rss(21)
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	const hz = 100 // USER_HZ is 100 on every Linux ABI Go supports
	cpu := time.Duration(ut+stt) * time.Second / hz
	return cpu, rss * int64(os.Getpagesize()), nil
}
