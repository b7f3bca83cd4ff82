package supervisor

import (
	"testing"

	"github.com/circle-supervisor/circle/internal/limits"
	"golang.org/x/sys/windows"
)

// The supervisor's Job Object hook puts memory_max and pids_max on the
// job it is given (read back on real Windows; Wine reports no limits).
func TestWindowsJobLimitsHook(t *testing.T) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(job)
	want := limits.Limits{MemoryMax: 96 << 20, PidsMax: 7}
	if err := jobLimits(want)(1, uintptr(job)); err != nil {
		t.Fatal(err)
	}
	got, err := limits.JobLimits(job)
	if got == (limits.Limits{}) && windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil {
		t.Log("read-back not checked: Wine's QueryInformationJobObject reports no limits")
		return
	}
	if got.MemoryMax != want.MemoryMax || got.PidsMax != want.PidsMax {
		t.Fatalf("job limits %+v (%v), want memory_max %d pids_max %d", got, err, want.MemoryMax, want.PidsMax)
	}
}
