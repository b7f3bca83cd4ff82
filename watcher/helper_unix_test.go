//go:build unix

package watcher

import (
	"fmt"
	"net"
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
	case "lock":
		// Holds an exclusive lock, like a server its port. A start while
		// the previous process still holds it fails at once (exit 1) and
		// leaves LOCK.failed; the holder, told to stop, waits (at most
		// 10 s) until its replacement has failed once, so every reload
		// makes exactly one quick failure.
		lock := os.Getenv("CIRCLE_LOCK")
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			os.Exit(2)
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			os.WriteFile(lock+".failed", nil, 0o644)
			os.Exit(1)
		}
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		<-term
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if os.Remove(lock+".failed") == nil {
				break
			}
		}
		f.Close() // now: a -race binary sleeps 1 s in os.Exit
		os.Exit(0)
	case "notify-reload":
		notifyReloadHelper()
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

// notifyReloadHelper speaks sd_notify like a Type=notify-reload service:
// READY=1 at start; on SIGHUP, RELOADING=1, a moment's work, then
// (having written CIRCLE_MARK) READY=1. With CIRCLE_MUTE set it never
// answers a reload.
func notifyReloadHelper() {
	addr := os.Getenv("NOTIFY_SOCKET")
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		os.Exit(4)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	c.Write([]byte("READY=1"))
	for range hup {
		if os.Getenv("CIRCLE_MUTE") != "" {
			continue
		}
		c.Write([]byte("RELOADING=1"))
		time.Sleep(300 * time.Millisecond)
		os.WriteFile(os.Getenv("CIRCLE_MARK"), []byte(strconv.Itoa(os.Getpid())), 0o644)
		c.Write([]byte("READY=1"))
	}
}
