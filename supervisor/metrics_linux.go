package supervisor

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// groupUsage returns, for each main pid, the CPU time and resident memory
// of the process, the other members of its process group and its tree of
// children, from one scan of /proc (as FillDescendants counts them).
func groupUsage(mains []int) map[int]Usage {
	out := make(map[int]Usage, len(mains))
	if len(mains) == 0 {
		return out
	}
	want := make(map[int]bool, len(mains))
	for _, p := range mains {
		want[p] = true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	type st struct {
		ppid, pgid int
		use        Usage
	}
	all := make(map[int]st, len(ents))
	children := map[int][]int{}
	page := int64(os.Getpagesize())
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 22 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgid, _ := strconv.Atoi(f[2])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stt, _ := strconv.ParseInt(f[12], 10, 64)
		rss, _ := strconv.ParseInt(f[21], 10, 64)
		const hz = 100 // USER_HZ
		all[pid] = st{ppid, pgid, Usage{CPU: time.Duration(ut+stt) * time.Second / hz, RSS: rss * page}}
		children[ppid] = append(children[ppid], pid)
	}
	members := map[int][]int{}
	for pid, x := range all {
		if want[x.pgid] && pid != x.pgid {
			members[x.pgid] = append(members[x.pgid], pid)
		}
	}
	for _, leader := range mains {
		if _, ok := all[leader]; !ok {
			continue
		}
		seen := map[int]bool{leader: true}
		stack := append([]int{leader}, members[leader]...)
		for _, p := range members[leader] {
			seen[p] = true
		}
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, c := range children[p] {
				if !seen[c] {
					seen[c] = true
					stack = append(stack, c)
				}
			}
		}
		var u Usage
		for p := range seen {
			u.CPU += all[p].use.CPU
			u.RSS += all[p].use.RSS
		}
		out[leader] = u
	}
	return out
}
