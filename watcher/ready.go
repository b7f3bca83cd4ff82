package watcher

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/circle-supervisor/circle/internal/ready"
)

// Readiness (issue 15). A process is "starting" until it is ready:
//
//   - with ready.* checks (p.checked), when its Prober reports Ready
//     (readyReport); a failure (ready.timeout, or the process exits) is a
//     failed start;
//   - without, once it has run MinUptime. Nothing runs per process for
//     that: procReadyLocked compares the clock, and one timer per watcher
//     (upT, armed only while such a process is starting and MinUptime > 0)
//     wakes the waiters and promotes a reload's new process.
//
// Once ready, the health.* checks run (StartHealth); unhealthy, like a
// missed watchdog ping, stops the process as a failure (failLocked).

// procReadyLocked reports whether p is up and ready at now.
func (w *Watcher) procReadyLocked(p *proc, now time.Time) bool {
	if p.down() {
		return false
	}
	if p.ready {
		return true
	}
	return !p.checked && now.Sub(p.startedAt) >= w.spec.Policy.MinUptime
}

// readyKit is what prepareLocked builds for a process with ready.*,
// health.* or notify keys, and when its max_age timer is due.
type readyKit struct {
	checks []ready.Check
	health []ready.Check
	// ageDue is when p.ageT fires (max_age), for a live upgrade to keep
	// it (armAgeAtLocked makes a kit for it if p has none).
	ageDue time.Time
}

// shellArgv runs a check's command line through the shell.
func shellArgv(cmdline string) []string {
	if os.PathSeparator == '\\' {
		return []string{"cmd", "/c", cmdline}
	}
	return []string{"/bin/sh", "-c", cmdline}
}

// prepareReadyLocked makes p's notify socket (its environment is added
// to env) and its checks. Called with the watcher's lock held, before the
// process starts.
func (w *Watcher) prepareReadyLocked(spec Spec, p *proc, widStr string, env []string, dir string) ([]string, error) {
	rs, hs := spec.Ready, spec.Health
	p.checked = rs.Any()
	if !p.checked && !hs.Any() && spec.Watchdog <= 0 {
		return env, nil
	}
	if rs.Notify || spec.Watchdog > 0 {
		n, err := w.listenNotify(spec, p)
		if err != nil {
			return env, err
		}
		p.notify = n
		env = append(env, n.Env(0)...)
	}
	kit, err := w.buildKit(spec, p, widStr, env, dir)
	if err != nil {
		return env, err
	}
	p.kit = kit
	return env, nil
}

// buildKit makes p's checks (ready.* and health.*; p.notify is the
// notify socket made for it, if any); env is its environment, which exec
// checks run with. With ready.log, p gets its output tap.
func (w *Watcher) buildKit(spec Spec, p *proc, widStr string, env []string, dir string) (*readyKit, error) {
	rs, hs := spec.Ready, spec.Health
	exp := func(s string) string { return strings.ReplaceAll(s, WIDToken, widStr) }
	execCheck := func(cmdline string) (ready.Check, error) {
		attr, err := checkSysProcAttr(spec)
		if err != nil {
			return ready.Check{}, err
		}
		return ready.Exec(ready.Command{Argv: shellArgv(exp(cmdline)), Env: env, Dir: dir, SysProcAttr: attr}, w.startCheck), nil
	}
	kit := &readyKit{}
	if rs.TCP != "" {
		kit.checks = append(kit.checks, ready.TCP(exp(rs.TCP)))
	}
	if rs.HTTP != "" {
		kit.checks = append(kit.checks, ready.HTTP(exp(rs.HTTP)))
	}
	if rs.Exec != "" {
		c, err := execCheck(rs.Exec)
		if err != nil {
			return nil, err
		}
		kit.checks = append(kit.checks, c)
	}
	if rs.Log != "" {
		c, err := ready.Log(rs.Log)
		if err != nil {
			return nil, err
		}
		kit.checks = append(kit.checks, c)
		p.tap = &lineTap{}
	}
	if rs.Notify {
		if p.notify == nil {
			return nil, errors.New("ready.notify: no notify socket")
		}
		kit.checks = append(kit.checks, ready.NotifyReady(p.notify))
	}
	if hs.TCP != "" {
		kit.health = append(kit.health, ready.TCP(exp(hs.TCP)))
	}
	if hs.HTTP != "" {
		kit.health = append(kit.health, ready.HTTP(exp(hs.HTTP)))
	}
	if hs.Exec != "" {
		c, err := execCheck(hs.Exec)
		if err != nil {
			return nil, err
		}
		kit.health = append(kit.health, c)
	}
	return kit, nil
}

// notifyDirs are the runtime directories already made and checked.
var notifyDirs sync.Map // string → error

var tempNotifyDir = sync.OnceValues(func() (string, error) {
	return os.MkdirTemp("", "circled-notify-")
})

// runtimeDir returns the directory for notify sockets, making it (0711:
// children running as another user must reach their socket) if missing.
func runtimeDir(dir string) (string, error) {
	if dir == "" {
		d, err := tempNotifyDir()
		if err == nil {
			err = os.Chmod(d, 0o711)
		}
		return d, err
	}
	if v, ok := notifyDirs.Load(dir); ok {
		err, _ := v.(error)
		return dir, err
	}
	err := os.Mkdir(dir, 0o711)
	if errors.Is(err, os.ErrExist) {
		err = nil
	}
	if err == nil {
		var fi os.FileInfo
		fi, err = os.Lstat(dir)
		switch {
		case err != nil:
		case !fi.IsDir():
			err = fmt.Errorf("%s is not a directory", dir)
		case fi.Mode().Perm()&0o022 != 0:
			err = fmt.Errorf("%s is writable by others (mode %v)", dir, fi.Mode().Perm())
		}
	}
	notifyDirs.Store(dir, err)
	return dir, err
}

func (w *Watcher) listenNotify(spec Spec, p *proc) (*ready.NotifySocket, error) {
	dir, err := runtimeDir(spec.RuntimeDir)
	if err != nil {
		return nil, fmt.Errorf("notify socket directory: %w", err)
	}
	uid, gid := -1, -1
	if spec.UID != nil {
		uid = *spec.UID
	}
	if spec.GID != nil {
		gid = *spec.GID
	}
	opts := ready.NotifyOptions{Dir: dir, UID: uid, GID: gid, Watchdog: spec.Watchdog,
		OnEvent: func(e ready.Event) { w.notifyEvent(p, e) }}
	if len(dir)+48 > 103 && abstractNotify {
		opts.Abstract = true // the path would be too long for sun_path
	}
	return ready.ListenNotify(opts)
}

// startCheck runs an exec check's command through the Spawner, so the
// reaper stays the only wait4.
func (w *Watcher) startCheck(cmd *exec.Cmd) (<-chan int, func(), error) {
	ch := make(chan int, 1)
	pid, err := w.spawner.Start(cmd, func(st ExitStatus) { ch <- st.ExitCode() })
	if err != nil {
		return nil, nil, err
	}
	return ch, func() { killGroup(pid) }, nil
}

// startReadyLocked runs once p's pid is known (commitLocked).
func (w *Watcher) startReadyLocked(p *proc) {
	if p.notify != nil {
		p.notify.SetPID(p.pid)
	}
	if !p.checked {
		if d := w.spec.Policy.MinUptime; d <= 0 {
			w.markReadyLocked(p)
		} else {
			w.armUpLocked(p.startedAt.Add(d))
		}
		return
	}
	w.startProberLocked(p, time.Time{}, false)
}

// startProberLocked starts p's readiness checks; a resumed prober (live
// upgrade) has the deadline it had (deadline) and knows whether its log
// check matched.
func (w *Watcher) startProberLocked(p *proc, deadline time.Time, logMatched bool) {
	rs := w.spec.Ready
	pr, err := ready.StartProber(ready.Options{Checks: p.kit.checks, Interval: rs.Interval, Timeout: rs.Timeout,
		Deadline: deadline, LogMatched: logMatched},
		func(r ready.Result) { w.readyReport(p, r) })
	if err != nil {
		w.failLocked(p, err.Error(), true)
		return
	}
	p.prober = pr
	if p.tap != nil {
		p.tap.prober.Store(pr)
	}
}

// armUpLocked makes the watcher wake at due, when a process without
// ready.* checks has run MinUptime (one timer per watcher).
func (w *Watcher) armUpLocked(due time.Time) {
	if w.upT != nil && !due.Before(w.upAt) {
		return
	}
	if w.upT != nil {
		w.upT.Stop()
	}
	w.upAt = due
	var t *time.Timer
	t = time.AfterFunc(time.Until(due), func() { w.post(func() { w.upLocked(t) }) })
	w.upT = t
}

// upLocked: processes without ready.* checks may have run MinUptime.
func (w *Watcher) upLocked(t *time.Timer) {
	if w.upT != t {
		return
	}
	{
		w.upT = nil
		now := time.Now()
		var next time.Time
		for _, p := range w.liveLocked() {
			if p.checked || p.ready || p.down() {
				continue
			}
			if w.procReadyLocked(p, now) {
				w.markReadyLocked(p)
				continue
			}
			if due := p.startedAt.Add(w.spec.Policy.MinUptime); next.IsZero() || due.Before(next) {
				next = due
			}
		}
		if !next.IsZero() {
			w.armUpLocked(next)
		}
		w.notify()
	}
}

func (w *Watcher) readyReport(p *proc, r ready.Result) {
	w.post(func() { w.readyReportLocked(p, r) })
}

func (w *Watcher) readyReportLocked(p *proc, r ready.Result) {
	if p.down() || p.ready {
		return
	}
	if r.Ready {
		w.log.Debug("ready", "wid", p.wid, "pid", p.pid)
		w.markReadyLocked(p)
		w.notify()
		return
	}
	w.failLocked(p, r.Reason(), true)
}

// markReadyLocked records that p is ready: its liveness checks start,
// and a reload's new process takes its slot.
func (w *Watcher) markReadyLocked(p *proc) {
	p.ready = true
	if p.tap != nil {
		p.tap.off.Store(true)
	}
	w.startHealthLocked(p, ready.HealthResume{})
	if p.incoming != nil {
		w.promoteLocked(p)
	}
}

// startHealthLocked starts p's liveness checks, if it has any; a resumed
// runner (live upgrade) goes on from r.
func (w *Watcher) startHealthLocked(p *proc, r ready.HealthResume) {
	if p.kit == nil || len(p.kit.health) == 0 {
		return
	}
	hs := w.spec.Health
	h, err := ready.StartHealth(ready.HealthOptions{Checks: p.kit.health, Interval: hs.Interval, Timeout: hs.Timeout, Retries: hs.Retries, Resume: r},
		func(r ready.HealthReport) { w.healthReport(p, r) })
	if err != nil {
		w.log.Warn("health checks", "wid", p.wid, "pid", p.pid, "err", err)
	}
	p.health = h
}

func (w *Watcher) healthReport(p *proc, r ready.HealthReport) {
	w.post(func() { w.healthReportLocked(p, r) })
}

func (w *Watcher) healthReportLocked(p *proc, r ready.HealthReport) {
	if p.down() {
		return
	}
	w.notify()
	if r.State == ready.HealthUnhealthy {
		w.failLocked(p, r.Reason(), false)
	} else {
		w.log.Debug("health", "wid", p.wid, "pid", p.pid, "state", r.State)
	}
}

// notifyEvent handles a message from p's notify socket (on the
// socket's reader: it posts to the owner).
func (w *Watcher) notifyEvent(p *proc, e ready.Event) {
	w.post(func() { w.notifyEventLocked(p, e) })
}

func (w *Watcher) notifyEventLocked(p *proc, e ready.Event) {
	if p.down() {
		return
	}
	switch e.Kind {
	case ready.EventReloading:
		if p.reloadWait == reloadWantReloading {
			p.reloadWait = reloadWantReady
		}
		w.notify()
	case ready.EventReady:
		if p.reloadWait == reloadWantReady {
			p.reloadWait = reloadDone
			w.log.Info("reloaded", "wid", p.wid, "pid", p.pid)
		}
		w.notify()
	case ready.EventStatus, ready.EventStopping, ready.EventMainPID:
		w.notify()
	case ready.EventWatchdogTimeout:
		w.failLocked(p, "watchdog: "+e.Text, !p.ready)
	case ready.EventRejected:
		w.log.Debug("notify message from outside the process tree dropped", "wid", p.wid, "pid", p.pid, "sender", e.PID)
	}
}

// failLocked stops p as a failure (a failed start when start): when it
// has gone, the restart policy counts it as an unexpected exit.
func (w *Watcher) failLocked(p *proc, why string, start bool) {
	if p.down() {
		return
	}
	w.log.Warn("process failed; stopping it", "wid", p.wid, "pid", p.pid, "reason", why)
	p.failed, p.failStart = why, start
	w.stopProcLocked(p)
	w.notify()
}

// endReadyLocked stops p's checks and closes its notify socket (in a
// tracked goroutine: Close waits for the socket's reader).
func (w *Watcher) endReadyLocked(p *proc) {
	p.prober.Cancel()
	p.health.Stop()
	if p.tap != nil {
		p.tap.off.Store(true)
	}
	if n := p.notify; n != nil {
		p.notify = nil
		w.goTracked(func() { n.Close() })
	}
}

// promoteLocked gives a reload's new process, now ready, its slot; the
// process it replaces is stopped.
func (w *Watcher) promoteLocked(p *proc) {
	s := p.incoming
	p.incoming = nil
	w.incoming = removeProc(w.incoming, p)
	if !w.ownsSlot(s) {
		w.draining = append(w.draining, p) // scaled away
		w.stopProcLocked(p)
		w.replDoneLocked(p, "")
		return
	}
	if old := s.proc; old != nil {
		w.replacedLocked(s, old, time.Now())
		w.draining = append(w.draining, old)
		w.stopProcLocked(old)
	}
	w.stopTimer(&s.timer)
	s.pending, s.down = "", false
	s.proc = p
	s.planned++
	s.spawns++
	s.lastErr = ""
	p.promoted = true
	w.armAgeLocked(p)
	w.log.Info("replacement ready, old process stopped", "wid", s.wid, "pid", p.pid)
	w.replDoneLocked(p, "")
}

func removeProc(ps []*proc, p *proc) []*proc {
	for i, x := range ps {
		if x == p {
			return append(ps[:i], ps[i+1:]...)
		}
	}
	return ps
}

// exitReason describes how a process ended, for errors.
func exitReason(st ExitStatus, uptime time.Duration) string {
	return exitWhat(st) + " after " + uptime.Round(time.Millisecond).String()
}

// exitWhat is "exited with code N" or "killed by signal NAME".
func exitWhat(st ExitStatus) string {
	if st.Signal != "" {
		return "killed by signal " + st.Signal
	}
	return fmt.Sprintf("exited with code %d", st.Code)
}

// lineTap passes the whole lines of a process's output to its prober
// (ready.log) until the process is ready; then it costs one atomic load.
type lineTap struct {
	off    atomic.Bool
	prober atomic.Pointer[ready.Prober]
}

// tapWriter is one stream's writer with a tap in front of it.
type tapWriter struct {
	io.WriteCloser
	tap     *lineTap
	partial []byte
}

const maxTapLine = 64 << 10

func (t *tapWriter) Write(b []byte) (int, error) {
	if !t.tap.off.Load() {
		t.feed(b)
	}
	return t.WriteCloser.Write(b)
}

func (t *tapWriter) feed(b []byte) {
	pr := t.tap.prober.Load()
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(t.partial)+len(b) <= maxTapLine {
				t.partial = append(t.partial, b...)
			}
			return
		}
		line := b[:i]
		if len(t.partial) > 0 {
			line = append(t.partial, line...)
			t.partial = t.partial[:0]
		}
		if pr != nil {
			pr.FeedLine(line)
		}
		b = b[i+1:]
	}
}

// abstractNotify: abstract unix sockets exist (Linux), used when the
// runtime directory's path is too long for a socket path.
var abstractNotify = runtime.GOOS == "linux"

// Conditions for Reached (depends_on).
const (
	CondStarted   = "started"   // a process is running
	CondReady     = "ready"     // the watcher is active: every process ready
	CondCompleted = "completed" // respawn = never and every process exited 0
)

// Reached reports whether the watcher has reached cond (CondStarted,
// CondReady or CondCompleted) and, if not, why, in a few words for
// status ("starting", "exited with code 1", ...). Wait for changes on
// Changed(); a process reaching MinUptime is a change too.
func (w *Watcher) Reached(cond string) (ok bool, why string) {
	w.call(func() { ok, why = w.reachedLocked(cond) })
	return ok, why
}

func (w *Watcher) reachedLocked(cond string) (ok bool, why string) {
	state := w.stateLocked()
	switch cond {
	case CondStarted:
		for _, s := range w.slots {
			if s.proc != nil && !s.proc.down() {
				return true, ""
			}
		}
	case CondReady:
		if state == StateActive {
			return true, ""
		}
	case CondCompleted:
		if w.spec.Policy.Respawn {
			return false, "respawns (not a one-shot)"
		}
		done := len(w.slots) > 0
		for _, s := range w.slots {
			switch {
			case !s.down || !s.hasExit:
				done = false
			case s.lastExit.Signal != "" || s.lastExit.Code != 0:
				return false, exitWhat(s.lastExit)
			}
		}
		if done {
			return true, ""
		}
	default:
		return false, fmt.Sprintf("unknown condition %q", cond)
	}
	if w.errMsg != "" {
		return false, state + ": " + w.errMsg
	}
	return false, state
}

// outputLines is how many lines of a failed process's output an error
// quotes.
const outputLines = 5

// withOutput appends to errs[i] the last lines of slot failed[i]'s
// output (last: Spec.LastOutput), for the first few failures. Called
// outside the owner.
func withOutput(last func(wid, n int) []string, errs []string, failed []int) {
	if last == nil {
		return
	}
	for i, wid := range failed {
		if i >= 3 || i >= len(errs) {
			return
		}
		if lines := last(wid, outputLines); len(lines) > 0 {
			errs[i] += "; last output:\n    " + strings.Join(lines, "\n    ")
		}
	}
}
