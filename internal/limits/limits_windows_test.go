package limits

import (
	"errors"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ApplyJob sets memory_max, pids_max and cpu_max on a Job Object and
// keeps the limits the job had (kill-on-close); JobLimits reads them
// back. Under Wine, which lacks the CPU rate class, only the first two.
func TestWindowsApplyJob(t *testing.T) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(job)
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		t.Fatal(err)
	}
	l := Limits{MemoryMax: 64 << 20, PidsMax: 5, CPUMax: 50}
	if err := Available(l); err != nil {
		t.Fatalf("Available: %v", err)
	}
	// memory_max and pids_max (one class, which Wine has), then cpu_max.
	if err := ApplyJob(job, Limits{MemoryMax: l.MemoryMax, PidsMax: l.PidsMax}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyJob(job, Limits{CPUMax: l.CPUMax}); err != nil {
		if isWine() {
			t.Skipf("SKIP cpu_max and the read-back: Wine has no CPU rate control: %v", err)
		}
		t.Fatal(err)
	}
	got, err := JobLimits(job)
	if err != nil {
		t.Fatal(err)
	}
	if got == (Limits{}) && isWine() {
		t.Skip("SKIP read-back: Wine's QueryInformationJobObject reports no limits (ApplyJob's three calls succeeded)")
	}
	if got.MemoryMax != l.MemoryMax || got.PidsMax != l.PidsMax || got.CPUMax < 45 || got.CPUMax > 55 {
		t.Fatalf("read back %+v, want memory %d, pids %d, cpu about 50", got, l.MemoryMax, l.PidsMax)
	}
	if err := windows.QueryInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), nil); err != nil {
		t.Fatal(err)
	}
	if info.BasicLimitInformation.LimitFlags&windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE == 0 {
		t.Fatal("ApplyJob dropped kill-on-close")
	}
}

func TestWindowsAvailable(t *testing.T) {
	err := Available(Limits{MemoryHigh: 1 << 20, IOWeight: 10, MaxMemory: 1 << 20, CPUMax: 20})
	var u *Unavailable
	if !errors.As(err, &u) || len(u.Problems) != 3 {
		t.Fatalf("want memory_high, io_weight and max_memory refused: %v", err)
	}
	if _, err := New("x/y", Limits{MemoryMax: 1}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("New with limits: %v", err)
	}
}

func isWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}
