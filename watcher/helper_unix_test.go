//go:build unix

package watcher

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for a child process, as in Go's
// os/exec tests: CIRCLE_HELPER selects a mode.
func TestMain(m *testing.M) {
	RunTrampolineIfRequested()
	switch mode := os.Getenv("CIRCLE_HELPER"); mode {
	case "":
		os.Exit(m.Run())
	case "sleep":
		select {}
	case "exit":
		n, _ := strconv.Atoi(os.Getenv("CIRCLE_CODE"))
		os.Exit(n)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		writePid(os.Getenv("CIRCLE_PIDFILE"), os.Getpid())
		select {}
	case "grandchild":
		// Spawn a grandchild that ignores TERM, record its pid, then sleep.
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "CIRCLE_HELPER=ignore-term", "CIRCLE_PIDFILE="+os.Getenv("CIRCLE_PIDFILE"))
		if err := cmd.Start(); err != nil {
			os.Exit(3)
		}
		select {}
	case "print":
		fmt.Println("hello from", os.Getenv("CIRCLED_WID"))
		fmt.Print("partial")
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		os.Exit(2)
	}
}

// helperEnv is a helper process's environment: only PATH and its mode.
func helperEnv(mode string) []string {
	return []string{"CIRCLE_HELPER=" + mode, "PATH=" + os.Getenv("PATH")}
}

const helperGrace = 5 * time.Second
