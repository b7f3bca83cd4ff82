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

// cpuSampler remembers each pid's last CPU time to report a rate.
type cpuSampler struct {
	mu   sync.Mutex
	last map[int]cpuSample
}

type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

var sampler = cpuSampler{last: map[int]cpuSample{}}

// Stats samples the named watchers' processes.
func (s *Supervisor) Stats(names []string) ([]WatcherStats, error) {
	st, _, err := s.Status(names)
	if err != nil {
		return nil, err
	}
	out := make([]WatcherStats, 0, len(st))
	now := time.Now()
	sampler.mu.Lock()
	defer sampler.mu.Unlock()
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
			if !ok {
				prev = cpuSample{at: p.StartedAt}
			}
			if dt := now.Sub(prev.at); dt > 0 {
				ps.CPU = 100 * float64(cpu-prev.cpu) / float64(dt)
			}
			sampler.last[p.PID] = cpuSample{at: now, cpu: cpu}
			ws.Processes = append(ws.Processes, ps)
		}
		out = append(out, ws)
	}
	return out, nil
}
