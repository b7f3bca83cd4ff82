package watcher

import (
	"errors"
	"os"
	"testing"
	"unsafe"

	"github.com/circle-supervisor/circle/internal/limits"
	"golang.org/x/sys/windows"
)

// A command's job hook gets the process's Job Object before the process
// runs, and the process then runs in that job: memory_max and pids_max
// put there by limits.ApplyJob hold it (JobLimits reads them back; Wine's
// QueryInformationJobObject reports no limits, so under Wine the
// read-back is not checked). The hook's done forgets it.
func TestWindowsJobHookLimitsTheJob(t *testing.T) {
	exe, _ := os.Executable()
	cmd, err := buildCmd(Spec{Umask: -1}, 3, []string{exe}, append(os.Environ(), "CIRCLE_HELPER=sleep", "CIRCLE_PIDFILE="+tempDir(t)+`\pid`), "")
	if err != nil {
		t.Fatal(err)
	}
	want := limits.Limits{MemoryMax: 64 << 20, PidsMax: 5}
	var gotWID int
	var gotJob windows.Handle
	forget := setJobHook(cmd, 3, func(wid int, job uintptr) error {
		gotWID, gotJob = wid, windows.Handle(job)
		return limits.ApplyJob(windows.Handle(job), want)
	})
	defer forget()
	release, err := startCmd(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		release()
	}()
	if gotWID != 3 {
		t.Fatalf("hook called with wid %d, want 3", gotWID)
	}
	jobs.Lock()
	job, ok := jobs.m[cmd.Process.Pid]
	jobs.Unlock()
	if !ok || job != gotJob {
		t.Fatalf("the process's job %v (registered %v), the hook's %v", job, ok, gotJob)
	}
	ph, err := windows.OpenProcess(windows.PROCESS_QUERY_INFORMATION, false, uint32(cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var in int32
	r, _, err := kernel32.NewProc("IsProcessInJob").Call(uintptr(ph), uintptr(job), uintptr(unsafe.Pointer(&in)))
	windows.CloseHandle(ph)
	if r == 0 || in == 0 {
		t.Fatalf("the process is not in the limited job: IsProcessInJob %d, in %d: %v", r, in, err)
	}
	got, err := limits.JobLimits(job)
	switch {
	case got == (limits.Limits{}) && underWine():
		t.Log("read-back not checked: Wine's QueryInformationJobObject reports no limits (ApplyJob succeeded)")
	case got.MemoryMax != want.MemoryMax || got.PidsMax != want.PidsMax:
		t.Fatalf("the process's job has %+v (%v), want memory_max %d pids_max %d", got, err, want.MemoryMax, want.PidsMax)
	}
	forget()
	if _, ok := jobHookFor(cmd); ok {
		t.Fatal("the hook is still recorded after its done")
	}
}

func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// A hook that fails fails the start: no process runs.
func TestWindowsJobHookErrorFailsStart(t *testing.T) {
	exe, _ := os.Executable()
	cmd, err := buildCmd(Spec{Umask: -1}, 1, []string{exe}, append(os.Environ(), "CIRCLE_HELPER=exit", "CIRCLE_CODE=0"), "")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("limits: no")
	defer setJobHook(cmd, 1, func(int, uintptr) error { return boom })()
	if _, err := startCmd(cmd); !errors.Is(err, boom) {
		t.Fatalf("startCmd = %v, want the hook's error", err)
	}
	if cmd.Process != nil {
		t.Fatal("the process was started despite the hook's error")
	}
}
