//go:build linux && (amd64 || arm64 || 386 || arm || ppc64le || s390x || riscv64 || loong64)

package main

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelSigaction is struct sigaction as the rt_sigaction syscall takes it
// on these architectures.
type kernelSigaction struct {
	handler  uintptr
	flags    uintptr
	restorer uintptr
	mask     uint64
}

// resetRealtimeIgnored sets signals 32-64 that circled inherited as
// ignored back to the default, so children do not inherit SIG_IGN. Go
// cannot catch some of these (32 is glibc's cancellation signal, which
// the runtime leaves alone), so os/signal cannot do it; the runtime
// installs handlers for the ones it uses, and those are not ignored.
func resetRealtimeIgnored() {
	for s := syscall.Signal(32); s <= 64; s++ {
		if !inheritedIgnored(s) {
			continue
		}
		var act kernelSigaction // SIG_DFL, no flags
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(s), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	}
}
