package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// circled tells systemd READY=1 once its watchers run, RELOADING=1 then
// READY=1 around a reload, and STOPPING=1 on shutdown; children do not
// inherit NOTIFY_SOCKET.
func TestSdNotifyLifecycle(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	nsock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	envOut := filepath.Join(dir, "env")
	cfg := filepath.Join(dir, "circled.ini")
	// watch_config = false: the reload is the SIGHUP's alone (the config
	// watch would see the rewrite too, and a loaded host could let it
	// reload first: two RELOADING=1/READY=1 pairs).
	os.WriteFile(cfg, []byte("[circled]\nsocket = "+filepath.Join(dir, "c.sock")+"\nwatch_config = false\n[watcher:w]\ncopy_env = true\n"+
		"cmd = /bin/sh -c 'env > "+envOut+"; exec sleep 1000'\n"), 0o644)
	cmd := exec.Command(filepath.Join(binDir, "circled"), "-c", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+nsock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	next := func(want string) {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		if got := string(buf[:n]); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %s", got, want)
		}
	}
	next("READY=1")
	var b []byte
	testhelper.Eventually(t, 30*time.Second, "the child to write its environment", func() bool {
		b, _ = os.ReadFile(envOut)
		return strings.Contains(string(b), "CIRCLED_WID=")
	})
	if strings.Contains(string(b), "NOTIFY_SOCKET") {
		t.Errorf("a child inherited NOTIFY_SOCKET")
	}
	os.WriteFile(cfg, []byte("[circled]\nsocket = "+filepath.Join(dir, "c.sock")+"\nwatch_config = false\n[watcher:w]\ncmd = sleep 1001\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	next("RELOADING=1")
	next("READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("circled: %v", err)
	}
}
