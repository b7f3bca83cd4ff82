package watcher

import (
	"os"

	"golang.org/x/sys/unix"
)

// enlargePipe raises a pipe's capacity to 1 MiB (the default unprivileged
// maximum), best effort; only done for pipes that fill our buffer.
func enlargePipe(fd int) { unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, 1<<20) }

// outputPipe makes a child's output pipe: the read end non-blocking and
// in the runtime poller (the pump reads it), the write end blocking and
// outside the poller (only the child writes to it).
//
// os.Pipe puts both ends in non-blocking mode and in the poller, and
// exec.Cmd's Start then makes the write end blocking again (Fd) and its
// Close removes it from the poller: 11 system calls per pipe against 6
// here (pipe2, F_SETFL on the read end, NewFile's F_GETFL on each end,
// one epoll_ctl, the write end's close), twice per start.
func outputPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	// A new pipe's status flags are its access mode only, which F_SETFL
	// ignores: setting O_NONBLOCK alone needs no F_GETFL.
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	// NewFile sees O_NONBLOCK on the read end and registers it with the
	// poller; the write end stays blocking, as the child needs it.
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}
