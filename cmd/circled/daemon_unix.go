//go:build unix

package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/safefile"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/supervisor/logs"
	"github.com/spf13/cobra"
)

// daemonize starts circled again without --daemon in a new session with
// stdio on /dev/null (or the logfile), and returns once it answers on its
// socket (exit 0) or has failed (exit 1 with its error).
func daemonize(cmd *cobra.Command, f rootFlags) error {
	d, err := config.ReadDaemon(f.config)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	exe, err := os.Executable()
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	var args []string
	for _, a := range os.Args[1:] {
		if a == "--daemon" || strings.HasPrefix(a, "--daemon=") {
			continue
		}
		args = append(args, a)
	}
	out, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer out.Close()
	if d.Logfile != "" && d.Logfile != "-" {
		// Like the daemon's own open (logs.Rotating): no symbolic link,
		// regular files only, in a directory checked once.
		lf, err := safefile.OpenAppendPath(d.Logfile, cmp.Or(d.LogfileMode, logs.DefaultFileMode))
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("logfile: %w", err)}
		}
		defer lf.Close()
		out = lf
	} else {
		fmt.Fprintln(cmd.ErrOrStderr(), "circled: no [circled] logfile is set: the daemon's output is discarded")
	}
	r, w, err := os.Pipe()
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	child := exec.Command(exe, args...)
	child.Env = append(os.Environ(), readyFDEnv+"=3")
	child.ExtraFiles = []*os.File{w}
	child.Stdin, _ = os.Open(os.DevNull)
	child.Stdout, child.Stderr = out, out
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return &exitError{code: 1, err: err}
	}
	w.Close()
	msg, _ := io.ReadAll(io.LimitReader(r, 1<<20))
	r.Close()
	if strings.TrimSpace(string(msg)) != "ok" {
		if len(msg) == 0 {
			state, _ := child.Process.Wait()
			return &exitError{code: 1, err: fmt.Errorf("daemon failed to start (%v)", state)}
		}
		child.Process.Wait()
		return &exitError{code: 1, err: errors.New(strings.TrimSpace(string(msg)))}
	}
	socket := ctl.ResolveSocket(f.socket, d.Socket)
	c := ctl.NewClient(socket)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := contextWithTimeout(time.Second)
		_, err := c.Version(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return &exitError{code: 1, err: fmt.Errorf("daemon (pid %d) does not answer on %s: %w", child.Process.Pid, socket, err)}
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "circled started (pid %d, socket %s)\n", child.Process.Pid, socket)
	child.Process.Release()
	return nil
}
