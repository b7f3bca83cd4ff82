package watcher

import (
	"os"
	"strconv"
	"strings"
)

// FillDescendants counts, for each process whose Descendants is -1 (no
// cgroup of its own), the other members of its process group plus its
// tree of children, from one scan of /proc. It runs on request only.
// A descendant that left the group and re-parented (setsid, a double
// fork) is not seen here: only a cgroup shows it.
func FillDescendants(ps []*ProcStatus) {
	want := map[int]bool{}
	for _, p := range ps {
		if p.Descendants < 0 {
			p.Descendants = 0
			if p.PID > 0 {
				want[p.PID] = true
			}
		}
	}
	if len(want) == 0 {
		return
	}
	// One scan reads a file per process on the host: it takes a reader's
	// place, as CountDescendants' cgroup reads do (see descendantReaders).
	descendantReaders <- struct{}{}
	defer func() { <-descendantReaders }()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	children := map[int][]int{}
	members := map[int][]int{} // of the wanted process groups
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, pgid, ok := statIDs(pid)
		if !ok {
			continue
		}
		children[ppid] = append(children[ppid], pid)
		if want[pgid] {
			members[pgid] = append(members[pgid], pid)
		}
	}
	count := map[int]int{}
	for leader := range want {
		seen := map[int]bool{leader: true}
		for _, pid := range members[leader] {
			seen[pid] = true
		}
		stack := []int{leader}
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, c := range children[p] {
				if !seen[c] {
					seen[c] = true
					stack = append(stack, c)
				}
			}
			if p != leader {
				seen[p] = true
			}
		}
		count[leader] = len(seen) - 1 // the leader itself is not counted
	}
	for _, p := range ps {
		if want[p.PID] {
			p.Descendants = count[p.PID]
		}
	}
}

// statIDs reads ppid and pgid from /proc/PID/stat.
func statIDs(pid int) (ppid, pgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	return ppid, pgid, err1 == nil && err2 == nil
}
