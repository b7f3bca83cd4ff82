package watcher

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows a process tree is held by a Job Object, not a process group:
//
//   - buildCmd asks for CREATE_SUSPENDED and CREATE_NEW_PROCESS_GROUP;
//   - startCmd (called by DirectSpawner.Start) creates a Job Object with
//     JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, gives it to the command's job
//     hook (Spec.Job: memory_max, cpu_max, pids_max), assigns the still-suspended
//     process to it, and only then resumes it, so not even its first
//     instruction runs outside the job and every descendant is in it;
//   - the job's handle stays open for the life of the process (registered in
//     jobs by pid) and is closed after the process has been waited for, which
//     kills whatever is left of the tree. If circled itself dies, the kernel
//     closes the handle and the trees die with it;
//   - a graceful stop is CTRL_BREAK to the process group (the group id is the
//     leader's pid); the hard stop terminates the job.

// jobs maps the pid of each live process started by startCmd to its job.
var jobs struct {
	sync.Mutex
	m map[int]windows.Handle
}

// consoleOnce gives circled a console before the first child starts:
// CTRL_BREAK only reaches processes attached to the caller's console, and
// a service has none. Children inherit the console, so it must exist first.
var consoleOnce sync.Once

var (
	kernel32             = windows.NewLazySystemDLL("kernel32.dll")
	procAllocConsole     = kernel32.NewProc("AllocConsole")
	procGetConsoleWindow = kernel32.NewProc("GetConsoleWindow")
	user32               = windows.NewLazySystemDLL("user32.dll")
	procShowWindow       = user32.NewProc("ShowWindow")
)

// ensureConsole allocates a hidden console when circled has none.
// AllocConsole fails harmlessly when a console is already attached.
func ensureConsole() {
	consoleOnce.Do(func() {
		if r, _, _ := procAllocConsole.Call(); r == 0 {
			return
		}
		if hwnd, _, _ := procGetConsoleWindow.Call(); hwnd != 0 {
			const swHide = 0
			procShowWindow.Call(hwnd, swHide)
		}
	})
}

// buildCmdDone is buildCmd plus the process's Job Object hook (resource
// limits: jobHookOf(spec), Spec.Job), which startCmd calls with the job
// before the process runs. done forgets the hook: the watcher calls it
// once the process has ended, or when the spawn fails after buildCmd.
func buildCmdDone(spec Spec, wid int, argv, env []string, dir string) (*exec.Cmd, func(), error) {
	cmd, err := buildCmd(spec, wid, argv, env, dir)
	if err != nil {
		return nil, nil, err
	}
	f := jobHookOf(spec)
	if f == nil {
		return cmd, nil, nil
	}
	return cmd, setJobHook(cmd, wid, f), nil
}

// jobHook is what startCmd calls with a process's Job Object.
type jobHook struct {
	wid int
	f   func(wid int, job uintptr) error
}

// jobHooks holds the hook of each built command until startCmd reads it
// (a hook is never needed after its process has started, but done keeps
// the entry's lifetime simple: the watcher's).
var jobHooks struct {
	sync.Mutex
	m map[*exec.Cmd]jobHook
}

// setJobHook records f for cmd; the returned func forgets it.
func setJobHook(cmd *exec.Cmd, wid int, f func(int, uintptr) error) (forget func()) {
	jobHooks.Lock()
	if jobHooks.m == nil {
		jobHooks.m = map[*exec.Cmd]jobHook{}
	}
	jobHooks.m[cmd] = jobHook{wid, f}
	jobHooks.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			jobHooks.Lock()
			delete(jobHooks.m, cmd)
			jobHooks.Unlock()
		})
	}
}

func jobHookFor(cmd *exec.Cmd) (jobHook, bool) {
	jobHooks.Lock()
	defer jobHooks.Unlock()
	h, ok := jobHooks.m[cmd]
	return h, ok
}

func buildCmd(spec Spec, wid int, argv, env []string, dir string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	// supervisor/config already rejects these keys on Windows with the
	// file, line and key; this guards direct users of the package.
	var keys []string
	if spec.UID != nil {
		keys = append(keys, "uid")
	}
	if spec.GID != nil {
		keys = append(keys, "gid")
	}
	if spec.Umask >= 0 {
		keys = append(keys, "umask")
	}
	for _, r := range spec.Rlimits {
		keys = append(keys, "rlimit_"+r.Name)
	}
	if len(spec.Files) > 0 || len(spec.ListenNames) > 0 {
		keys = append(keys, "sockets (use_sockets, $(circle.sockets.NAME))")
	}
	if spec.Join != nil {
		keys = append(keys, "limit cgroups")
	}
	if len(keys) > 0 {
		return nil, fmt.Errorf("%s: not supported on windows", strings.Join(keys, ", "))
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Dir: dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.CREATE_SUSPENDED}
	return cmd, nil
}

// startCmd starts cmd suspended inside a new kill-on-close Job Object,
// then resumes it. release closes the job (killing any process left in
// it); call it once the process has been waited for.
func startCmd(cmd *exec.Cmd) (release func(), err error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= windows.CREATE_NEW_PROCESS_GROUP | windows.CREATE_SUSPENDED
	ensureConsole()
	job, err := newKillOnCloseJob()
	if err != nil {
		return nil, err
	}
	if h, ok := jobHookFor(cmd); ok {
		// Limits on the job before the process is in it, so they hold
		// from its first instruction (it starts suspended anyway).
		if err := h.f(h.wid, uintptr(job)); err != nil {
			windows.CloseHandle(job)
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		windows.CloseHandle(job)
		return nil, err
	}
	pid := cmd.Process.Pid
	fail := func(err error) (func(), error) {
		cmd.Process.Kill()
		cmd.Wait()
		windows.CloseHandle(job)
		return nil, err
	}
	// Our os.Process still holds a handle, so the pid cannot be reused.
	ph, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(pid))
	if err != nil {
		return fail(fmt.Errorf("open process %d: %w", pid, err))
	}
	err = windows.AssignProcessToJobObject(job, ph)
	windows.CloseHandle(ph)
	if err != nil {
		return fail(fmt.Errorf("assign process %d to a job object: %w", pid, err))
	}
	jobs.Lock()
	if jobs.m == nil {
		jobs.m = make(map[int]windows.Handle)
	}
	jobs.m[pid] = job
	jobs.Unlock()
	release = func() {
		jobs.Lock()
		if jobs.m[pid] == job {
			delete(jobs.m, pid)
		}
		jobs.Unlock()
		windows.CloseHandle(job)
	}
	if err := resumeProcess(uint32(pid)); err != nil {
		release()
		cmd.Wait()
		return nil, err
	}
	return release, nil
}

func newKillOnCloseJob() (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, fmt.Errorf("create job object: %w", err)
	}
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return 0, fmt.Errorf("set job object limits: %w", err)
	}
	return job, nil
}

// resumeProcess resumes the threads of a process created suspended. Go's
// os.StartProcess closes the primary thread handle, so the thread is found
// again with a Toolhelp snapshot.
func resumeProcess(pid uint32) error {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPTHREAD, 0)
	if err != nil {
		return fmt.Errorf("resume process %d: thread snapshot: %w", pid, err)
	}
	defer windows.CloseHandle(snap)
	var te windows.ThreadEntry32
	te.Size = uint32(unsafe.Sizeof(te))
	resumed := 0
	for err = windows.Thread32First(snap, &te); err == nil; err = windows.Thread32Next(snap, &te) {
		if te.OwnerProcessID != pid {
			continue
		}
		th, err := windows.OpenThread(windows.THREAD_SUSPEND_RESUME, false, te.ThreadID)
		if err != nil {
			return fmt.Errorf("resume process %d: open thread %d: %w", pid, te.ThreadID, err)
		}
		_, err = windows.ResumeThread(th)
		windows.CloseHandle(th)
		if err != nil {
			return fmt.Errorf("resume process %d: thread %d: %w", pid, te.ThreadID, err)
		}
		resumed++
	}
	if resumed == 0 {
		return fmt.Errorf("resume process %d: no thread found", pid)
	}
	return nil
}

// stopAction is what a stop_signal (or circlectl signal) does on Windows.
type stopAction int

const (
	ctrlBreak stopAction = iota + 1 // CTRL_BREAK_EVENT to the process group
	terminate                       // TerminateJobObject / TerminateProcess
)

// parseStopSignal maps a Unix signal name or number to what Windows can
// do: TERM, INT and BREAK become CTRL_BREAK; KILL terminates.
func parseStopSignal(s string) (stopAction, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	name = strings.TrimPrefix(name, "SIG")
	if n, err := strconv.Atoi(name); err == nil {
		switch n {
		case 2, 15, 21: // SIGINT, SIGTERM, SIGBREAK
			return ctrlBreak, nil
		case 9:
			return terminate, nil
		}
		return 0, fmt.Errorf("signal %s is not supported on windows (TERM, INT, BREAK, KILL are)", s)
	}
	switch name {
	case "TERM", "INT", "BREAK":
		return ctrlBreak, nil
	case "KILL":
		return terminate, nil
	}
	return 0, fmt.Errorf("signal %q is not supported on windows (TERM, INT, BREAK, KILL are)", s)
}

// generateCtrlBreak is a variable so tests can see the calls.
var generateCtrlBreak = func(pid int) error {
	return windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(pid))
}

// signalProc delivers sig. CTRL_BREAK always reaches the whole process
// group (Windows cannot address one process of a group), so group only
// matters for KILL: the job, or the main process alone.
func signalProc(pid int, sig string, group bool) error {
	act, err := parseStopSignal(sig)
	if err != nil {
		return err
	}
	switch act {
	case ctrlBreak:
		if err := generateCtrlBreak(pid); err != nil {
			return fmt.Errorf("CTRL_BREAK to process group %d: %w", pid, err)
		}
		return nil
	default:
		if group && terminateJob(pid) {
			return nil
		}
		return terminateProcess(pid)
	}
}

// terminateJob terminates the job of pid; false when there is none.
func terminateJob(pid int) bool {
	jobs.Lock()
	defer jobs.Unlock()
	job, ok := jobs.m[pid]
	if !ok {
		return false
	}
	windows.TerminateJobObject(job, 1)
	return true
}

func terminateProcess(pid int) error {
	h, err := windows.OpenProcess(windows.PROCESS_TERMINATE, false, uint32(pid))
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	err = windows.TerminateProcess(h, 1)
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		// Already exiting.
		return nil
	}
	return err
}

// killGroup terminates the job of pid, if it is still registered: after
// the process has been waited for, its job is already closed.
func killGroup(pid int) {
	terminateJob(pid)
}

// RunTrampolineIfRequested is a no-op on Windows.
func RunTrampolineIfRequested() {}

func exitStatus(ps *os.ProcessState, t time.Time) ExitStatus {
	return ExitStatus{Code: ps.ExitCode(), Time: t}
}
