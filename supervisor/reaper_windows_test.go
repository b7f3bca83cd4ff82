package supervisor

// Runs under Wine: on Windows the Reaper is a DirectSpawner, so each
// process is started suspended in its own Job Object and waited for.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/watcher"
)

func TestWindowsReaperStartsAndReports(t *testing.T) {
	r := NewReaper(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	comspec := filepath.Join(os.Getenv("SystemRoot"), "System32", "cmd.exe")
	cmd := exec.Command(comspec, "/c", "exit 3")
	got := make(chan watcher.ExitStatus, 1)
	pid, err := r.Start(cmd, func(st watcher.ExitStatus) { got <- st })
	if err != nil {
		t.Fatal(err)
	}
	if pid <= 0 {
		t.Fatalf("pid = %d", pid)
	}
	select {
	case st := <-got:
		if st.Code != 3 {
			t.Fatalf("exit = %+v, want code 3", st)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit reported")
	}
	if r.Reaped() != nil {
		t.Fatal("Reaped fires on windows")
	}
	r.Sweep()
}
