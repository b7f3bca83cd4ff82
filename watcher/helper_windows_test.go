package watcher

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// TestMain lets the test binary stand in for a child process, as in Go's
// os/exec tests: CIRCLE_HELPER selects a mode.
func TestMain(m *testing.M) {
	switch mode := os.Getenv("CIRCLE_HELPER"); mode {
	case "":
		os.Exit(m.Run())
	case "sleep":
		writePid(os.Getenv("CIRCLE_PIDFILE"), os.Getpid())
		sleepForever()
	case "exit":
		n, _ := strconv.Atoi(os.Getenv("CIRCLE_CODE"))
		os.Exit(n)
	case "grandchild":
		// Record our pid, spawn a grandchild that records its own, sleep.
		writePid(os.Getenv("CIRCLE_PIDFILE"), os.Getpid())
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "CIRCLE_HELPER=sleep")
		if err := cmd.Start(); err != nil {
			os.Exit(3)
		}
		sleepForever()
	case "supervise":
		// A stand-in for circled: start a "grandchild" helper through
		// DirectSpawner (so in a Job Object), then sleep until killed.
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "CIRCLE_HELPER=grandchild")
		if _, err := (DirectSpawner{}).Start(cmd, func(ExitStatus) {}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		sleepForever()
	case "check-gone":
		// For packaging/windows/test-wine.sh: exit 0 when no pid in
		// CIRCLE_PIDFILE is alive, 1 (listing them) otherwise.
		b, err := os.ReadFile(os.Getenv("CIRCLE_PIDFILE"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		live := 0
		for _, f := range strings.Fields(string(b)) {
			if n, _ := strconv.Atoi(f); n > 0 && alive(n) {
				fmt.Println("alive:", n)
				live++
			}
		}
		if live > 0 {
			os.Exit(1)
		}
		os.Exit(0)
	case "print":
		fmt.Println("hello from", os.Getenv("CIRCLED_WID"))
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		os.Exit(2)
	}
}

// sleepForever blocks without tripping the runtime's deadlock detector
// (select {} in a process with no other goroutine is a fatal error).
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// alive reports whether pid is a process that has not exited.
func alive(pid int) bool {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	ev, _ := windows.WaitForSingleObject(h, 0)
	return ev == uint32(windows.WAIT_TIMEOUT)
}

// helperEnv is a helper process's environment: the whole environment
// (Windows programs need SystemRoot and the like), plus the mode.
func helperEnv(mode string) []string {
	return append(os.Environ(), "CIRCLE_HELPER="+mode)
}

const helperGrace = 300 * time.Millisecond
