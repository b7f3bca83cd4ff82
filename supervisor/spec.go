package supervisor

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/circle-supervisor/circle/internal/limits"
	"github.com/circle-supervisor/circle/internal/sockets"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/supervisor/logs"
	"github.com/circle-supervisor/circle/watcher"
)

// spec turns a resolved config watcher into what the watcher runs.
func (s *Supervisor) spec(wc *config.Watcher, d config.Daemon) watcher.Spec {
	argv := wc.Argv
	if len(wc.Sockets) > 0 {
		// $(circle.sockets.NAME) is the socket's descriptor number.
		argv = make([]string, len(wc.Argv))
		for i, a := range wc.Argv {
			argv[i] = wc.ExpandSocketTokens(a)
		}
	}
	sp := watcher.Spec{
		Name:            wc.Name,
		Argv:            argv,
		Env:             wc.Env,
		Dir:             wc.WorkingDir,
		UID:             wc.UID,
		GID:             wc.GID,
		Umask:           wc.Umask,
		StopSignal:      wc.StopSignal,
		StopChildren:    wc.StopChildren,
		GracefulTimeout: wc.GracefulTimeout,
		NumProcesses:    wc.NumProcesses,
		WarmupDelay:     wc.WarmupDelay,
		Policy: watcher.Policy{
			Respawn:    wc.Respawn,
			OnFailure:  wc.RespawnMode == "on-failure",
			ExitCodes:  wc.ExitCodes,
			MinUptime:  wc.MinUptime,
			BackoffMax: wc.BackoffMax,
			MaxRetry:   wc.MaxRetry,
			// max_failed_starts (supervisord's startretries + 1)
			MaxFailedStarts: wc.MaxFailedStarts,
			Flapping: watcher.Flapping{
				Attempts: wc.Flapping.Attempts,
				Window:   wc.Flapping.Window,
				RetryIn:  wc.Flapping.RetryIn,
				MaxRetry: wc.Flapping.MaxRetry,
			},
		},
	}
	sp.WIDOffset, sp.WIDWidth = wc.WIDOffset, wc.WIDWidth
	r := wc.Ready
	sp.Ready = watcher.ReadySpec{TCP: r.TCP, HTTP: r.HTTP, Exec: r.Exec, Log: r.Log, Notify: r.Notify,
		Timeout: r.Timeout, Interval: r.Interval}
	h := wc.Health
	sp.Health = watcher.HealthSpec{TCP: h.TCP, HTTP: h.HTTP, Exec: h.Exec, Interval: h.Interval,
		Timeout: h.Timeout, Retries: h.Retries}
	sp.Watchdog = wc.Watchdog
	sp.MaxAge, sp.MaxAgeVariance = wc.MaxAge, wc.MaxAgeVariance
	sp.ReloadSignal = wc.ReloadSignal
	sp.LastOutput = s.lastOutput(wc.Name)
	if sp.Ready.Notify || sp.Watchdog > 0 {
		sp.RuntimeDir = s.notifyDir()
	}
	if sp.Umask < 0 {
		sp.Umask = d.Umask
	}
	if sp.StopSignal == "" {
		sp.StopSignal = "TERM"
	}
	// config resolved the user at load time: GID is its primary group (or
	// the gid key) and Groups its complete supplementary list.
	sp.Groups = wc.Groups
	if u := wc.User; u != nil {
		sp.User = &watcher.User{Name: u.Name, Home: u.Home, Shell: u.Shell}
	}
	for _, r := range wc.Rlimits {
		sp.Rlimits = append(sp.Rlimits, watcher.Rlimit{Name: r.Name, Value: r.Value})
	}
	sp.Hook = s.hookFunc(wc)
	s.specLimits(&sp, wc)
	s.specSockets(&sp, wc)
	sp.Stdout = s.sink(wc, wc.Stdout, logs.Stdout)
	if wc.RedirectStderr {
		sp.Stderr = sp.Stdout
	} else {
		sp.Stderr = s.sink(wc, wc.Stderr, logs.Stderr)
	}
	s.specListener(&sp, wc) // [eventlistener:x]: stdin and stdout are its pool's
	sp.Env = svServerURL(sp.Env, s.opts.Socket)
	return sp
}

// withSockets gives sp the sockets wc uses, from the sockets circled
// holds (bound with internal/sockets from Config.Sockets): descriptors
// 3, 4, ... in wc.Sockets order, which is what $(circle.sockets.NAME)
// became in Argv, named for LISTEN_FDNAMES. A watcher without sockets
// is left alone. spec() calls it (specSockets) with the sockets the
// supervisor bound.
func withSockets(sp *watcher.Spec, wc *config.Watcher, held *sockets.Set) error {
	if len(wc.Sockets) == 0 {
		sp.Files, sp.ListenNames = nil, nil
		return nil
	}
	names := make([]string, len(wc.Sockets))
	for i, sk := range wc.Sockets {
		names[i] = sk.Name
	}
	files, err := held.Files(names)
	if err != nil {
		return fmt.Errorf("watcher %s: %w", wc.Name, err)
	}
	sp.Files, sp.ListenNames = files, names
	return nil
}

// limitsOf is wc's resource limits in internal/limits' terms, for the
// supervisor's limits.New (whose Set.Join is watcher.Spec.Join) and
// limits.Available (each Problem names its key): specLimits.
func limitsOf(wc *config.Watcher) limits.Limits {
	l := wc.Limits
	return limits.Limits{
		MemoryMax:         l.MemoryMax,
		MemoryHigh:        l.MemoryHigh,
		CPUMax:            l.CPUMax,
		PidsMax:           int64(l.PidsMax),
		IOWeight:          uint16(l.IOWeight), // 1..10000 at load
		MaxMemory:         wc.MaxMemory,
		MaxMemoryInterval: wc.MaxMemoryInterval,
	}
}

// sameProcess reports whether two specs start identical processes, so a
// reload can update the rest in place. The fields that apply without
// restarting a process are those of the config's live watcher keys
// (config.KeyInfo.Live).
func sameProcess(a, b *config.Watcher) bool {
	return a.EqualExceptLive(b)
}

// notifyDir is where the watchers make their processes' notify sockets:
// beside the control socket (SOCKET.notify, 0711, only circled's user
// writes it), else a private temporary directory ("").
func (s *Supervisor) notifyDir() string {
	if s.opts.Socket == "" || strings.HasPrefix(s.opts.Socket, `\\`) {
		return ""
	}
	return s.opts.Socket + ".notify"
}

// lastOutput returns the last lines of a watcher's slot from its ring
// (both streams), without their "NAME.WID | " prefix.
func (s *Supervisor) lastOutput(name string) func(wid, n int) []string {
	return func(wid, n int) []string {
		data, _ := s.ring(name).Tail(200, -1)
		prefix := name + "." + strconv.Itoa(wid) + " | "
		var out []string
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				out = append(out, rest)
			}
		}
		if len(out) > n {
			out = out[len(out)-n:]
		}
		return out
	}
}
