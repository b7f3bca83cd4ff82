//go:build windows

package limits

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Available reports whether the limits set in l can be enforced here: on
// Windows memory_max, cpu_max and pids_max map to Job Object limits
// (ApplyJob); memory_high, io_weight and max_memory have no equivalent.
func Available(l Limits) error {
	if ps := validate(l); len(ps) > 0 {
		return problems(ps)
	}
	var ps []Problem
	for _, k := range []struct {
		set bool
		key string
	}{{l.MemoryHigh != 0, "memory_high"}, {l.IOWeight != 0, "io_weight"}, {l.MaxMemory != 0, "max_memory"}} {
		if k.set {
			ps = append(ps, Problem{k.key, "not enforced on Windows: a Job Object has no such limit (memory_max, cpu_max and pids_max are)"})
		}
	}
	return problems(ps)
}

// jobCPURate is JOBOBJECT_CPU_RATE_CONTROL_INFORMATION with CpuRate.
type jobCPURate struct {
	ControlFlags uint32
	CpuRate      uint32
}

const (
	jobCPURateEnable  = 0x1
	jobCPURateHardCap = 0x4
)

// ApplyJob puts l's memory_max, cpu_max and pids_max on job, the Job
// Object that holds one process and its descendants, keeping the limits
// the job already has (kill-on-close): memory_max is JobMemoryLimit (the
// committed memory of all its processes together; past it allocations
// fail), cpu_max a hard cap of the job's CPU rate (a percentage of one
// CPU, as a share of all of them), pids_max ActiveProcessLimit (processes,
// not threads; a process past it fails to start). Call it before the
// job's first process is resumed.
func ApplyJob(job windows.Handle, l Limits) error {
	if ps := validate(l); len(ps) > 0 {
		return problems(ps)
	}
	if l.MemoryMax > 0 || l.PidsMax > 0 {
		var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
		if err := windows.QueryInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
			uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), nil); err != nil {
			return fmt.Errorf("limits: reading the job's limits: %w", err)
		}
		if l.MemoryMax > 0 {
			info.BasicLimitInformation.LimitFlags |= windows.JOB_OBJECT_LIMIT_JOB_MEMORY
			info.JobMemoryLimit = uintptr(min(uint64(l.MemoryMax), uint64(^uintptr(0))))
		}
		if l.PidsMax > 0 {
			info.BasicLimitInformation.LimitFlags |= windows.JOB_OBJECT_LIMIT_ACTIVE_PROCESS
			info.BasicLimitInformation.ActiveProcessLimit = uint32(min(l.PidsMax, math.MaxUint32))
		}
		if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
			uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
			return fmt.Errorf("limits: memory_max/pids_max on the job: %w", err)
		}
	}
	if l.CPUMax > 0 {
		// CpuRate is in 1/100 percent of all the machine's CPUs.
		rate := int64(l.CPUMax*100) / int64(runtime.NumCPU())
		info := jobCPURate{ControlFlags: jobCPURateEnable | jobCPURateHardCap, CpuRate: uint32(min(max(rate, 1), 10000))}
		if _, err := windows.SetInformationJobObject(job, windows.JobObjectCpuRateControlInformation,
			uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
			return fmt.Errorf("limits: cpu_max on the job: %w", err)
		}
	}
	return nil
}

// JobLimits reads back the limits ApplyJob sets (for tests and status):
// zero where the job has none.
func JobLimits(job windows.Handle) (Limits, error) {
	var l Limits
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	if err := windows.QueryInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), nil); err != nil {
		return l, err
	}
	if info.BasicLimitInformation.LimitFlags&windows.JOB_OBJECT_LIMIT_JOB_MEMORY != 0 {
		l.MemoryMax = int64(info.JobMemoryLimit)
	}
	if info.BasicLimitInformation.LimitFlags&windows.JOB_OBJECT_LIMIT_ACTIVE_PROCESS != 0 {
		l.PidsMax = int64(info.BasicLimitInformation.ActiveProcessLimit)
	}
	var cpu jobCPURate
	if err := windows.QueryInformationJobObject(job, windows.JobObjectCpuRateControlInformation,
		uintptr(unsafe.Pointer(&cpu)), uint32(unsafe.Sizeof(cpu)), nil); err != nil {
		return l, err
	}
	if cpu.ControlFlags&jobCPURateEnable != 0 && cpu.ControlFlags&jobCPURateHardCap != 0 {
		l.CPUMax = float64(cpu.CpuRate) * float64(runtime.NumCPU()) / 100
	}
	return l, nil
}
