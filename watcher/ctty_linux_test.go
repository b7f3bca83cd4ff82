package watcher

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A child never shares circled's controlling terminal. Without one (a
// service: how these tests run) a child gets a process group of its own
// in circled's session; with one, a session of its own.

// procSession reads pgrp, session and tty_nr of pid from /proc.
func procSession(pid int) (pgid, sid, tty int, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 5 {
		return 0, 0, 0, fmt.Errorf("odd stat %q", s)
	}
	pgid, _ = strconv.Atoi(f[2])
	sid, _ = strconv.Atoi(f[3])
	tty, _ = strconv.Atoi(f[4])
	return pgid, sid, tty, nil
}

// startSessionProbe starts the test binary's sleep helper as a
// watcher's child and reports its pgid, sid and tty_nr.
func startSessionProbe() (pid, pgid, sid, tty int, err error) {
	cmd, err := buildCmd(Spec{}, 1, []string{os.Args[0]}, append(os.Environ(), "CIRCLE_HELPER=sleep"), "")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, 0, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	pid = cmd.Process.Pid
	pgid, sid, tty, err = procSession(pid) // Start returns once it has exec'd
	return pid, pgid, sid, tty, err
}

func TestChildSessionWithoutTerminal(t *testing.T) {
	if hasCtty() {
		t.Skip("the test runs with a controlling terminal (TestChildSessionWithTerminal covers it)")
	}
	pid, pgid, sid, tty, err := startSessionProbe()
	if err != nil {
		t.Fatal(err)
	}
	own, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	if pgid != pid || sid != own || tty != 0 {
		t.Fatalf("child %d: pgid %d sid %d tty %d; want pgid %d (its own group), sid %d (circled's session), tty 0", pid, pgid, sid, tty, pid, own)
	}
}

// TestChildSessionWithTerminal runs the test binary (TestCttyHelper) as
// the leader of a session whose controlling terminal is a new pty: the
// child it starts must be in a session of its own, without a terminal.
func TestChildSessionWithTerminal(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	var unlock int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skipf("unlockpt: %v", e)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("opening the pty's terminal: %v", err)
	}
	defer slave.Close()
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestCttyHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "CIRCLE_CTTY_HELPER=1")
	cmd.Stdin = slave
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Run()
	if err != nil || !strings.Contains(out.String(), "CTTY-OK") {
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
}

func TestCttyHelper(t *testing.T) {
	if os.Getenv("CIRCLE_CTTY_HELPER") == "" {
		t.Skip("run by TestChildSessionWithTerminal")
	}
	if !hasCtty() {
		t.Fatal("hasCtty: false in a session with a controlling terminal")
	}
	pid, pgid, sid, tty, err := startSessionProbe()
	if err != nil {
		t.Fatal(err)
	}
	if pgid != pid || sid != pid || tty != 0 {
		t.Fatalf("child %d: pgid %d sid %d tty %d; want its own session and group (%d) and no terminal", pid, pgid, sid, tty, pid)
	}
	fmt.Println("CTTY-OK")
}
