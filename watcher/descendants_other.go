//go:build !linux

package watcher

// FillDescendants sets 0 where a process has no cgroup: without /proc
// circled does not list other processes at status time.
func FillDescendants(ps []*ProcStatus) {
	for _, p := range ps {
		if p.Descendants < 0 {
			p.Descendants = 0
		}
	}
}
