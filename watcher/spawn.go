package watcher

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/internal/cgroup"
	"github.com/circle-supervisor/circle/internal/procstate"
)

// Spawning. The owner prepares a job (which slot, which spec, the slot's
// spare cgroup) and queues it; workers (at most GOMAXPROCS, started when
// jobs are queued, gone when none are left) build the command, fork and
// exec it; each job's result comes back to the owner as a message
// (jobDoneLocked), which records it (commitLocked). The owner never
// waits for a child to start.

// spawnJob is one slot's start: prepared and recorded on the owner,
// started by a worker, which alone touches it in between.
type spawnJob struct {
	s        *slot
	p        *proc
	spec     *Spec
	cg       *cgroup.Tree
	tracker  Tracker
	batch    *spawnBatch
	incoming bool // a replacement: the process waits beside the slot's until ready

	cmd              *exec.Cmd
	readers, writers []*os.File
	pid              int
	err              error
}

// spawnBatch is the jobs of one startSlotsLocked: their failures are
// recorded after every start of the batch (so giving up knows every
// process of the batch that runs, whatever the order of the slots), and
// then runs once all are recorded.
type spawnBatch struct {
	left   int
	failed []*spawnJob
	then   func()
}

// spawnLocked starts the slot's process.
func (w *Watcher) spawnLocked(s *slot) {
	w.spawnManyLocked([]*slot{s}, nil)
}

// respawnLocked starts the slot's process at once after its previous
// one ended. Until it is recorded, changes are not published (owner.go,
// maxHold): an observer comparing statuses sees the old process replaced by the
// new one, as when both happened in one step, not a slot without a
// process in between (and a watcher "starting" for a moment).
func (w *Watcher) respawnLocked(s *slot) {
	b := &spawnBatch{left: 1}
	j := w.prepareLocked(s, false)
	j.batch = b
	w.queueJobsLocked([]*spawnJob{j})
}

// spawnManyLocked starts the processes of several slots (then, if not
// nil, runs once all are recorded).
func (w *Watcher) spawnManyLocked(slots []*slot, then func()) {
	if len(slots) == 0 {
		if then != nil {
			then()
		}
		return
	}
	b := &spawnBatch{left: len(slots), then: then}
	jobs := make([]*spawnJob, len(slots))
	for i, s := range slots {
		jobs[i] = w.prepareLocked(s, false)
		jobs[i].batch = b
	}
	w.queueJobsLocked(jobs)
}

// slotEnv is the environment and working directory of slot wid's process
// (wid formatted as widStr): the spec's, with $(circle.wid) expanded, and
// CIRCLED_WID; with room for extra more variables.
func slotEnv(spec *Spec, wid int, widStr string, extra int) (env []string, dir string) {
	env = make([]string, 0, len(spec.Env)+1+extra)
	for _, e := range spec.Env {
		env = append(env, strings.ReplaceAll(e, WIDToken, widStr))
	}
	env = append(env, "CIRCLED_WID="+strconv.Itoa(wid))
	return env, strings.ReplaceAll(spec.Dir, WIDToken, widStr)
}

// prepareLocked makes s's next job: the rest is done by a worker.
func (w *Watcher) prepareLocked(s *slot, incoming bool) *spawnJob {
	w.stopTimer(&s.timer)
	s.pending = ""
	j := &spawnJob{s: s, p: &proc{wid: s.wid, spec: w.specP}, spec: w.specP, cg: w.cg, tracker: w.tracker, incoming: incoming}
	if !incoming {
		j.p.cell, s.spare = s.spare, nil
		s.job = j
	}
	w.inflight++
	return j
}

// queueJobsLocked hands jobs to the workers, starting workers as needed.
func (w *Watcher) queueJobsLocked(jobs []*spawnJob) {
	w.jobMu.Lock()
	w.jobQ = append(w.jobQ, jobs...)
	n := min(len(w.jobQ), runtime.GOMAXPROCS(0)) - w.workers
	if n > 0 {
		w.workers += n
	}
	w.jobMu.Unlock()
	for range n {
		w.goTracked(w.spawnWorker)
	}
}

// spawnWorker starts queued jobs until there are none left.
func (w *Watcher) spawnWorker() {
	for {
		w.jobMu.Lock()
		if len(w.jobQ) == 0 {
			w.workers--
			w.jobQ = nil // (the array may be large)
			w.jobMu.Unlock()
			return
		}
		j := w.jobQ[0]
		w.jobQ[0] = nil
		w.jobQ = w.jobQ[1:]
		w.jobMu.Unlock()
		if err := w.o.ctx.Err(); err != nil {
			j.err = ErrClosed
		} else {
			w.startJob(j)
		}
		if !w.post(func() { w.jobDoneLocked(j) }) {
			// Closed meanwhile: nobody will handle it.
			if j.err == nil {
				killGroup(j.pid)
				if j.p.joinDone != nil {
					j.p.joinDone() // its end will not be handled
					j.p.joinDone = nil
				}
			}
			for _, f := range j.readers {
				f.Close()
			}
			if j.p.notify != nil {
				j.p.notify.Close()
			}
		}
	}
}

// startJob builds j's command and starts it. It touches only j (and
// the spec, which nobody changes), outside the owner.
func (w *Watcher) startJob(j *spawnJob) {
	spec, s, p := j.spec, j.s, j.p
	defer func() {
		for _, f := range j.writers {
			f.Close() // the child's ends
		}
	}()
	if spec.Hook != nil {
		ev := HookEvent{Point: BeforeSpawn, Watcher: spec.Name, WID: s.wid}
		if err := spec.Hook(w.o.ctx, ev); err != nil {
			j.err = hookErr(BeforeSpawn, err)
			return
		}
	}
	wid := FormatWID(s.wid, spec.WIDOffset, spec.WIDWidth)
	argv := make([]string, len(spec.Argv))
	for i, a := range spec.Argv {
		argv[i] = strings.ReplaceAll(a, WIDToken, wid)
	}
	env, dir := slotEnv(spec, s.wid, wid, 0)
	if env, j.err = w.prepareReadyLocked(*spec, p, wid, env, dir); j.err != nil {
		return
	}
	if j.cmd, p.joinDone, j.err = buildCmdDone(*spec, s.wid, argv, env, dir); j.err != nil {
		return
	}
	p.oomKilled = spec.OOMKilled
	defer func() {
		if j.err != nil && p.joinDone != nil {
			// Joined, but not started: its limit cgroups are done with.
			p.joinDone()
			p.joinDone = nil
		}
	}()
	if j.readers, j.writers, j.err = attachOutput(j.cmd, *spec); j.err != nil {
		return
	}
	if spec.Stdin != nil {
		in, err := spec.Stdin(s.wid)
		if err != nil {
			j.err = err
			return
		}
		if in != nil {
			j.cmd.Stdin = in
			j.writers = append(j.writers, in) // closed here once the child has it
		}
	}
	if j.cmd.Stdin == nil {
		if null := devNull(); null != nil {
			j.cmd.Stdin = null // exec.Cmd would open and close /dev/null for each start
		}
	}
	if j.cg != nil {
		// The slot's previous cgroup (empty) is reused: a restart costs
		// no mkdir and rmdir.
		cell, err := p.cell, error(nil)
		if cell == nil {
			cell, err = j.cg.NewProc(spec.Name, s.wid)
		}
		if err == nil {
			if err = cell.Prepare(j.cmd); err != nil {
				cell.Remove()
			}
		}
		p.cell = nil
		if err != nil {
			w.log.Warn("cannot make the process's cgroup; it runs contained by its process group only", "wid", s.wid, "err", err)
		} else {
			p.cell = cell
		}
	} else if p.cell != nil {
		p.cell.Remove()
		p.cell = nil
	}
	if spec.Attach != nil {
		if p.cell == nil {
			j.err = errors.New("resource limits: the process has no cgroup v2 of its own to put them on")
			return
		}
		done, err := spec.Attach(s.wid, p.cell.Path())
		if err != nil {
			p.cell.Remove()
			p.cell = nil
			j.err = err
			return
		}
		if prev := p.joinDone; prev != nil {
			p.joinDone = func() { prev(); done() }
		} else {
			p.joinDone = done
		}
	}
	p.startedAt = time.Now()
	j.pid, j.err = w.spawner.Start(j.cmd, func(st ExitStatus) { w.exited(p, st) })
	if p.cell != nil {
		if j.err != nil {
			p.cell.Remove()
			p.cell = nil
		} else if err := p.cell.Started(j.pid); err != nil {
			w.log.Debug("moving the process into its cgroup", "pid", j.pid, "err", err)
		}
	}
	if j.err == nil && j.tracker != nil && p.cell == nil {
		// Read now, in parallel with the other starts; 0 if it is gone
		// already (then it is not recorded).
		p.startTick, _ = procstate.StartTime(j.pid)
	}
	if j.err == nil && spec.Hook != nil {
		w.runHook(spec, HookEvent{Point: AfterSpawn, WID: s.wid, PID: j.pid}, nil)
	}
}

// jobDoneLocked records a job a worker has finished.
func (w *Watcher) jobDoneLocked(j *spawnJob) {
	w.inflight--
	if j.s.job == j {
		j.s.job = nil
	}
	b := j.batch
	if j.err != nil && b != nil {
		b.failed = append(b.failed, j)
	} else {
		w.commitLocked(j)
	}
	if b != nil {
		if b.left--; b.left == 0 {
			for _, f := range b.failed {
				w.commitLocked(f)
			}
			if b.then != nil {
				b.then()
			}
		}
	}
	w.notify()
}

func (w *Watcher) commitLocked(j *spawnJob) {
	s, p := j.s, j.p
	p.committed = true
	if j.err != nil {
		for _, f := range j.readers {
			f.Close()
		}
		if p.kit != nil || p.notify != nil {
			w.endReadyLocked(p)
		}
		p.finished = true
		if j.incoming {
			p.failed = j.err.Error()
			if w.ownsSlot(s) {
				s.lastErr = "reload: " + p.failed
			}
			w.replDoneLocked(p, p.failed)
			return
		}
		if w.ownsSlot(s) {
			w.spawnFailedLocked(s, j.err)
		}
		return
	}
	p.pid = j.pid
	switch {
	case j.incoming:
		p.incoming = s
		w.incoming = append(w.incoming, p)
	case !w.ownsSlot(s) || s.proc != nil:
		// Scaled away while it started.
		w.draining = append(w.draining, p)
	default:
		s.proc = p
		s.spawnErrs, s.lastErr = 0, ""
		if s.spawns > 0 {
			if s.crashed {
				s.unplanned++
				if s.crashedLive {
					s.liveRestarts++
				}
			} else {
				s.planned++
			}
		}
		s.crashed, s.crashedLive = false, false
		s.spawns++
		w.armAgeLocked(p)
	}
	w.startReadyLocked(p)
	startPumps(&w.pumps, j.readers, *j.spec, s.wid, p.pid, p.tap)
	if w.tracker != nil && p.startTick != 0 {
		w.tracker.Started(w.spec.Name, s.wid, p.pid, p.startTick)
		p.tracked = true
	}
	w.log.Debug("spawned", "wid", s.wid, "pid", p.pid)
	if !w.want || w.fatal || w.flapping || (!j.incoming && s.proc != p) {
		// Stopped, or given up, or scaled away while it started.
		w.stopProcLocked(p)
	}
	if p.early != nil {
		w.exitedLocked(p, *p.early)
	}
	w.notify()
}

// devNull is /dev/null, opened once for reading and shared by every
// start as the child's standard input (nil on Windows, or if it cannot be
// opened: exec.Cmd opens its own then). Sharing it saves an open, a
// poller registration attempt and a close per start.
var devNull = sync.OnceValue(func() *os.File {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		return nil
	}
	return f
})
