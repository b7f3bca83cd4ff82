//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/buildinfo"
	"github.com/circle-supervisor/circle/internal/sdnotify"
	"github.com/circle-supervisor/circle/supervisor"
	"github.com/circle-supervisor/circle/watcher"
	"golang.org/x/sys/unix"
)

// runCheck runs cmd (__upgrade-check) through the reaper, the only
// wait4 in circled; cmd.Stdout and Stderr must be buffers.
func (u *upgrader) runCheck(ctx context.Context, cmd *exec.Cmd) error {
	outs := []*io.Writer{&cmd.Stdout, &cmd.Stderr}
	var readers []*os.File
	copied := make(chan struct{}, len(outs))
	for _, o := range outs {
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range readers {
				f.Close()
			}
			return err
		}
		dst := *o
		*o = w
		readers = append(readers, r)
		go func() {
			io.Copy(dst, io.LimitReader(r, 1<<20))
			r.Close()
			copied <- struct{}{}
		}()
	}
	exited := make(chan watcher.ExitStatus, 1)
	pid, err := u.reaper.Start(cmd, func(st watcher.ExitStatus) { exited <- st })
	for _, o := range outs {
		(*o).(*os.File).Close() // the child's ends
	}
	if err != nil {
		for range outs {
			<-copied
		}
		return err
	}
	var st watcher.ExitStatus
	select {
	case st = <-exited:
	case <-ctx.Done():
		unix.Kill(pid, unix.SIGKILL)
		<-exited
		for range outs {
			<-copied
		}
		return fmt.Errorf("no answer within the time allowed (%w)", ctx.Err())
	}
	for range outs {
		select {
		case <-copied:
		case <-time.After(2 * time.Second): // a descendant holds the pipe: what was read is enough
		}
	}
	switch {
	case st.Signal != "":
		return fmt.Errorf("killed by signal %s", st.Signal)
	case st.Code != 0:
		return fmt.Errorf("exit status %d", st.Code)
	}
	return nil
}

// Upgrade implements ctl.UpgradeBackend (through backend).
func (u *upgrader) Upgrade(ctx context.Context, req ctl.UpgradeRequest) (ctl.UpgradeReply, func(), error) {
	var reply ctl.UpgradeReply
	u.mu.Lock()
	if u.busy {
		u.mu.Unlock()
		return reply, nil, upgradeRefused{"an upgrade is already in progress"}
	}
	u.busy = true
	u.lastErr = ""
	u.mu.Unlock()
	release := func() {
		u.mu.Lock()
		u.busy = false
		u.mu.Unlock()
	}
	if u.listener == nil {
		// Checked before the freeze: a nil listener would panic in
		// the handler with every watcher and the reaper left frozen.
		release()
		return reply, nil, upgradeRefused{"the control socket cannot be handed over"}
	}
	bin, err := resolveBinary(req.Binary)
	if err != nil {
		release()
		return reply, nil, upgradeRefused{err.Error()}
	}
	began := time.Now()
	chk, err := checkBinary(ctx, bin, u.runCheck)
	if err != nil {
		release()
		return reply, nil, upgradeRefused{"the new binary failed its check: " + err.Error()}
	}
	checked := time.Now()
	// The state's format depends on what is handed over (event
	// listeners need format 2): the new binary must read it.
	h, err := u.sup.PrepareUpgradeFor(ctx, chk.StateFormats)
	if err != nil {
		release()
		if errors.Is(err, supervisor.ErrUpgrade) {
			return reply, nil, upgradeRefused{trimPrefix(err, supervisor.ErrUpgrade)}
		}
		return reply, nil, mapErr(err)
	}
	fail := func(err error) (ctl.UpgradeReply, func(), error) {
		h.Abort()
		release()
		return reply, nil, fmt.Errorf("upgrade: %w", err)
	}
	lf, err := u.listener.File()
	if err != nil {
		return fail(fmt.Errorf("the control socket's descriptor: %w", err))
	}
	var tcpFiles []*os.File
	var tcpNames []string
	if slices.Contains(chk.Handover, handoverTCP) {
		for _, name := range slices.Sorted(maps.Keys(u.tcp)) {
			f, err := u.tcp[name].File()
			if err != nil {
				u.log.Warn("upgrade: the new binary binds this listener again", "listener", name, "err", err)
				continue
			}
			tcpFiles = append(tcpFiles, f)
			tcpNames = append(tcpNames, name+"="+strconv.Itoa(fdNum(f)))
		}
	}
	closeTCP := func() {
		for _, f := range tcpFiles {
			f.Close()
		}
	}
	u.mu.Lock()
	next := u.upgrades + 1
	u.mu.Unlock()
	st := h.State
	st.From, st.Upgrades, st.Listener, st.NotifySocket, st.StartPath = buildinfo.Version, next, fdNum(lf), u.notifySocket, startPath
	st.ExecAt = time.Now()
	data, err := json.Marshal(st)
	if err != nil {
		lf.Close()
		closeTCP()
		return fail(err)
	}
	sf, err := stateFile(filepath.Dir(u.socket), data)
	if err != nil {
		lf.Close()
		closeTCP()
		return fail(fmt.Errorf("writing the state: %w", err))
	}
	u.log.Info("upgrade: executing the new binary in place", "binary", bin, "from", buildinfo.Version, "to", chk.Version,
		"check", checked.Sub(began).Round(time.Microsecond), "freeze", time.Since(checked).Round(time.Microsecond),
		"watchers", len(st.Watchers), "pipes", len(h.Files), "state_bytes", len(data))
	reply = ctl.UpgradeReply{Binary: bin, From: buildinfo.Version, To: chk.Version, PID: os.Getpid(), Upgrades: next, Format: h.Format()}
	commit := func() {
		keep := append([]*os.File{lf, sf}, h.Files...)
		keep = append(keep, tcpFiles...)
		env := os.Environ()
		env = append(env, upgradeStateEnv+"="+strconv.Itoa(fdNum(sf)))
		if len(tcpNames) > 0 {
			env = append(env, upgradeListenersEnv+"="+strings.Join(tcpNames, ","))
		}
		if u.notifySocket != "" {
			env = append(env, sdnotify.EnvSocket+"="+u.notifySocket)
		}
		err := execInPlace(bin, keep, env)
		// Only reached when the exec failed: go on as before.
		lf.Close()
		sf.Close()
		closeTCP()
		h.Abort()
		u.mu.Lock()
		u.lastErr = fmt.Sprintf("executing %s: %v", bin, err)
		u.busy = false
		u.mu.Unlock()
	}
	return reply, commit, nil
}

// fdNum is f's descriptor number, read without Fd (which would make it
// blocking).
func fdNum(f *os.File) int {
	n := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { n = int(fd) })
	}
	return n
}

// execInPlace executes bin with circled's arguments, keep inherited.
// It returns only if that failed (keep are close-on-exec again).
func execInPlace(bin string, keep []*os.File, env []string) error {
	setInherit := func(on bool) {
		for _, f := range keep {
			if rc, err := f.SyscallConn(); err == nil {
				rc.Control(func(fd uintptr) {
					flag := unix.FD_CLOEXEC
					if on {
						flag = 0
					}
					unix.FcntlInt(fd, unix.F_SETFD, flag)
				})
			}
		}
	}
	setInherit(true)
	argv := append([]string{bin}, os.Args[1:]...)
	var err error
	withEmptySigmask(func() { err = syscall.Exec(bin, argv, env) })
	setInherit(false)
	return err
}

// readUpgradeState reads the state a previous circled of this process
// handed over, nil when this start is not a live upgrade.
func readUpgradeState() (*supervisor.UpgradeState, error) {
	v, ok := os.LookupEnv(upgradeStateEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(upgradeStateEnv) // children must not see it
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: not a descriptor", upgradeStateEnv, v)
	}
	f := os.NewFile(uintptr(fd), "upgrade-state")
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
	if err != nil {
		return nil, fmt.Errorf("reading the handed-over state: %w", err)
	}
	var st supervisor.UpgradeState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decoding the handed-over state: %w", err)
	}
	if !slices.Contains(supervisor.UpgradeFormats, st.Format) {
		return nil, fmt.Errorf("the handed-over state has format %d, this binary reads %v", st.Format, supervisor.UpgradeFormats)
	}
	return &st, nil
}

// listenerFromFD is the control listener a previous circled handed over.
func listenerFromFD(fd int) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), "control-socket")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("the handed-over control socket: %w", err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true) // removed at shutdown, as one made by ctl.Listen
	}
	return ln, nil
}
