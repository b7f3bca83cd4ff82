//go:build !linux && !windows

package limits

import "runtime"

// Available reports the limits set in l as not enforceable: only Linux
// (cgroups) and Windows (Job Objects) enforce them.
func Available(l Limits) error {
	if ps := validate(l); len(ps) > 0 {
		return problems(ps)
	}
	var ps []Problem
	for _, k := range l.Keys() {
		ps = append(ps, Problem{k, "not enforced on " + runtime.GOOS + ": resource limits need Linux cgroups (or, for memory_max, cpu_max and pids_max, a Windows Job Object)"})
	}
	return problems(ps)
}
