package supervisor

import (
	"sync"
	"time"
)

// ProcStats is one process's resource use.
type ProcStats struct {
	WID int
	PID int
	CPU float64 // percent of one CPU since the previous sample
	RSS int64   // bytes
}

// WatcherStats groups ProcStats by watcher.
type WatcherStats struct {
	Name      string
	Processes []ProcStats
}

// cpuSampler remembers each live process's last CPU time to report a
// rate. It holds only processes that were running at the last sample: a
// pid that is gone (reaped) is forgotten at the next Stats call, and a
// pid that was reused (another start time) starts over, so the table
// never grows past the live processes and never shows negative CPU.
type cpuSampler struct {
	mu   sync.Mutex
	last map[int]cpuSample
}

type cpuSample struct {
	start time.Time // the process's start: tells a reused pid apart
	at    time.Time
	cpu   time.Duration
}

var sampler = cpuSampler{last: map[int]cpuSample{}}

// Stats samples the named watchers' processes.
func (s *Supervisor) Stats(names []string) ([]WatcherStats, error) {
	st, _, err := s.Status(names)
	if err != nil {
		return nil, err
	}
	out := make([]WatcherStats, 0, len(st))
	// Every watcher's live processes, to forget the samples of the ones
	// that are gone, whichever watchers this call asked for.
	all, _, err := s.Status(nil)
	if err != nil {
		return nil, err
	}
	live := map[int]time.Time{}
	for _, w := range all {
		for _, p := range w.Processes {
			if p.PID != 0 {
				live[p.PID] = p.StartedAt
			}
		}
	}
	now := time.Now()
	sampler.mu.Lock()
	defer sampler.mu.Unlock()
	for pid, smp := range sampler.last {
		if start, ok := live[pid]; !ok || !start.Equal(smp.start) {
			delete(sampler.last, pid)
		}
	}
	for _, w := range st {
		ws := WatcherStats{Name: w.Name}
		for _, p := range w.Processes {
			if p.PID == 0 {
				continue
			}
			ps := ProcStats{WID: p.WID, PID: p.PID}
			cpu, rss, err := procUsage(p.PID)
			if err != nil {
				return nil, err
			}
			ps.RSS = rss
			prev, ok := sampler.last[p.PID]
			if !ok || !prev.start.Equal(p.StartedAt) {
				prev = cpuSample{start: p.StartedAt, at: p.StartedAt}
			}
			if dt := now.Sub(prev.at); dt > 0 && cpu >= prev.cpu {
				ps.CPU = 100 * float64(cpu-prev.cpu) / float64(dt)
			}
			sampler.last[p.PID] = cpuSample{start: p.StartedAt, at: now, cpu: cpu}
			ws.Processes = append(ws.Processes, ps)
		}
		out = append(out, ws)
	}
	return out, nil
}
