package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/watcher"
)

// defaultHookTimeout bounds a hook when hooks.timeout is not set.
const defaultHookTimeout = 30 * time.Second

// hookOutputMax bounds the output of one hook run that reaches circled's
// log (the last bytes are kept).
const hookOutputMax = 4096

// hookFunc is the watcher's Spec.Hook for wc's hooks.* command lines; nil
// when it sets none.
func (s *Supervisor) hookFunc(wc *config.Watcher) func(context.Context, watcher.HookEvent) error {
	h := wc.Hooks
	any := false
	for _, n := range config.HookNames {
		if h.Get(n) != "" {
			any = true
		}
	}
	if !any {
		return nil
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = defaultHookTimeout
	}
	return func(ctx context.Context, ev watcher.HookEvent) error {
		line := h.Get(string(ev.Point))
		if line == "" {
			return nil
		}
		return s.runHook(ctx, wc, line, ev, timeout)
	}
}

// hookEnv is the watcher's environment plus what the hook is told.
func hookEnv(wc *config.Watcher, ev watcher.HookEvent) []string {
	env := make([]string, 0, len(wc.Env)+6)
	for _, kv := range wc.Env {
		if !strings.HasPrefix(kv, "CIRCLED_") {
			env = append(env, kv)
		}
	}
	env = append(env, "CIRCLED_EVENT="+string(ev.Point), "CIRCLED_WATCHER="+ev.Watcher)
	if ev.WID != 0 {
		env = append(env, "CIRCLED_WID="+strconv.Itoa(ev.WID))
	}
	if ev.PID != 0 {
		env = append(env, "CIRCLED_PID="+strconv.Itoa(ev.PID))
	}
	if ev.Exit != nil {
		if ev.Exit.Signal != "" {
			env = append(env, "CIRCLED_EXIT_SIGNAL="+ev.Exit.Signal)
		} else {
			env = append(env, "CIRCLED_EXIT_CODE="+strconv.Itoa(ev.Exit.Code))
		}
	}
	if ev.Signal != "" && ev.Exit == nil {
		env = append(env, "CIRCLED_SIGNAL="+ev.Signal)
	}
	return env
}

// tailBuf keeps the last max bytes written to it.
type tailBuf struct {
	mu  sync.Mutex
	b   []byte
	max int
	cut bool
}

func (t *tailBuf) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tailBuf) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimRight(t.b, "\n"))
}

// runHook runs one hook command line as the watcher's user, through the
// reaper (the only wait4 on Unix: exec.Cmd.Wait would race it), killing
// its process group at the timeout or when ctx ends, and what is left of
// the group once the hook has ended. A Before* hook that
// does not exit 0 vetoes the action: the error names the hook, its exit
// status and its last output line.
func (s *Supervisor) runHook(ctx context.Context, wc *config.Watcher, line string, ev watcher.HookEvent, timeout time.Duration) error {
	name := "hooks." + string(ev.Point)
	cmd := hookCommand(line)
	cmd.Env = hookEnv(wc, ev)
	cmd.Dir = wc.WorkingDir
	if err := hookAttr(cmd, wc); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	out := &tailBuf{max: hookOutputMax}
	copied := make(chan struct{})
	exited := make(chan watcher.ExitStatus, 1)
	pid, err := s.opts.Spawner.Start(cmd, func(st watcher.ExitStatus) { exited <- st })
	w.Close()
	if err != nil {
		r.Close()
		s.log.Error("hook did not start", "watcher", wc.Name, "hook", name, "err", err)
		return fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var st watcher.ExitStatus
	var cut error
	select {
	case st = <-exited:
	case <-t.C:
		cut = fmt.Errorf("timed out after %s (killed)", timeout)
	case <-ctx.Done():
		cut = fmt.Errorf("cancelled (killed): %w", context.Cause(ctx))
	}
	if cut != nil {
		killHook(pid)
		st = <-exited // SIGKILL: it ends
	}
	// What the hook started in its group does not outlive it (circled
	// waits for its children at shutdown).
	killHook(pid)
	// A descendant that outlives the hook may hold the pipe: its output is
	// not waited for beyond a moment.
	grace := time.NewTimer(200 * time.Millisecond)
	select {
	case <-copied:
	case <-grace.C:
	}
	grace.Stop()
	r.Close()
	output := out.String()
	args := []any{"watcher", wc.Name, "hook", name, "pid", pid, "exit", describeExit(st)}
	if ev.WID != 0 {
		args = append(args, "wid", ev.WID)
	}
	if output != "" {
		args = append(args, "output", output)
	}
	switch {
	case cut != nil:
		s.log.Error("hook "+cut.Error(), args...)
	case st.Signal != "" || st.Code != 0:
		s.log.Warn("hook failed", args...)
	default:
		s.log.Info("hook ran", args...)
	}
	if cut == nil && st.Signal == "" && st.Code == 0 {
		return nil
	}
	msg := describeExit(st)
	if cut != nil {
		msg = cut.Error()
	}
	if last := lastLine(output); last != "" {
		msg += ": " + last
	}
	if strings.HasPrefix(string(ev.Point), "before_") {
		// The action does not happen: say so to the event stream too
		// (the command's error and status carry it as well).
		s.Publish(Event{Type: EventVeto, Watcher: wc.Name, WID: ev.WID, PID: ev.PID, Reason: name + ": " + msg})
	}
	return errors.New(name + ": " + msg)
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\r\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[len(s)-200:]
	}
	return strings.TrimSpace(s)
}

// hookCommand is the shell command that runs line.
func hookCommand(line string) *exec.Cmd {
	return exec.Command(shell[0], append(shell[1:], line)...)
}
